"""Board definitions: one module per board, chosen by config["board"] (imported as boards.<name>).

Each module offers PINS (valid GPIO ids), ACTUATORS (default downlink allow-list), HAS_WIFI,
CLOCK_TRUSTED (True only where the clock is right without NTP) and read_sensors() -> list of
(name, value, unit). They live in a package so that `boards.esp32` never shadows the built-in
`esp32` module on the board itself.
"""
