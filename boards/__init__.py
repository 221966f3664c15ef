"""Board definitions: one module per board, chosen by config["board"] (imported as boards.<name>).

Each module offers PINS (valid GPIO ids), ACTUATORS (default downlink allow-list), HAS_WIFI,
CLOCK_TRUSTED (True only where the clock is right without NTP) and read_sensors() -> list of
(name, value, unit). They live in a package so that `boards.esp32` never shadows the built-in
`esp32` module on the board itself. A board whose RTC keeps running through some resets offers
rtc_kept(): True when the reset that started this boot was one of them, so that the clock is
believed until NTP answers (if it shows a time at or after the build's day: kpnthings.wiring).

A board may add pin rules in boards/<name>_pins.py: AVOID (pin -> why no sensor or actuator may
use it), INPUT_ONLY and NO_PULL (sets), STRAPPING (pin -> (the pull that stops the boot, why))
and WARN (pin -> why it may not be free; the host warns), and a pin_rules() that hands that
module over unregistered. The config check reads them at boot (kpnthings.wiring.configure) and
drops them, so they hold no heap while the device runs, and a board without them costs nothing.
"""
