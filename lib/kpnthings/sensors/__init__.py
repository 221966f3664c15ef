"""Sensors declared in config.json: check the list, build the drivers, read them all.

A config lists its sensors as dicts, e.g. ``{"type": "dht22", "pin": 4}``. The board's checks,
defaults and naming live in ``schema`` (needed at boot only); each driver lives in its own
module and is imported only when the config uses it, so a board pays for nothing it does not
wire up.

Readings are ``(name, value, unit)`` tuples: a number goes out as SenML ``v``, a bool as ``vb``;
``unit`` is None when the config gave none.
"""


class SensorConfigError(ValueError):
    """A sensors entry in config.json is wrong; the message names the entry and the field."""


class SensorError(Exception):
    """A sensor did not answer or answered garbage; the loop counts it and tries again."""


class Driver:
    """What every driver's Sensor shares: the reading names its entry gives (``names``), the text
    of its last failed read (``last_error``, kept by read_all) and the ``label`` messages name it
    by, which build() sets to "sensors[<index>] (<type>)"."""

    label = "sensor"

    def __init__(self, entry):
        self.names = entry["names"]
        self.last_error = None


def validate(entries, board_pins, adc_pins=None, reserved_names=None, pin_rules=None):
    """Check the config's ``sensors`` list as the drivers read it; return normalised copies.

    board_pins: the GPIO ids the board has (None skips that check). adc_pins: pins that can
    read analog values (None skips). reserved_names: record names already used elsewhere
    (actuators), which default names avoid. pin_rules: the board's boot-only rules module
    (boards/<board>_pins.py: pins to avoid, input-only, without pulls, strapping), or None.
    Raises SensorConfigError naming entry, type and
    field. Each returned entry has every default filled in and a ``names`` list, one name per
    reading. Feeding the result back in returns the same result. This is the board's short
    check (see ``schema``); the host's full check is kpnthings_tools.sensors_check.
    """
    from kpnthings.sensors import schema

    return schema.validate(entries, board_pins, adc_pins, reserved_names, pin_rules)


def types():
    """The sensor types a config may use, sorted."""
    from kpnthings.sensors import schema

    return sorted(schema.KINDS)


def build(entries, board=None, machine_module=None, clock=None):
    """Create one driver object per entry, importing each driver module only when used.

    ``entries`` may be raw or already validated. ``machine_module`` replaces ``machine`` (tests
    pass a simulated one); otherwise a board's ``sensor_machine(entries)`` is used if it has one
    (the unix board: simulated devices behind the configured pins), else the firmware's
    ``machine``. No bus traffic happens here: an absent sensor shows up as a read error, never
    as a failed boot.
    """
    if not entries:
        return []
    # validate() is idempotent, so validated entries can pass again; raw ones get checked.
    entries = validate(entries, getattr(board, "PINS", None), getattr(board, "ADC_PINS", None))
    _drop_schema()
    if machine_module is None:
        factory = getattr(board, "sensor_machine", None)
        if factory is not None:
            machine_module = factory(entries)
        else:
            import machine as machine_module  # type: ignore[no-redef]
    if clock is None:
        from kpnthings import compat as clock  # type: ignore[no-redef]
    ctx = _Context(machine_module, clock)
    sensors = []
    for index, entry in enumerate(entries):
        label = "sensors[%d] (%s)" % (index, entry["type"])
        try:
            sensor = _driver_class(entry["type"])(entry, ctx)
        except ImportError as e:  # a firmware built without dht, onewire or ds18x20
            raise SensorConfigError(
                "%s: this firmware lacks a module it needs: %s" % (label, e)
            ) from None
        sensor.label = label
        sensors.append(sensor)
    return sensors


def _drop_schema():
    """The checks are done once the drivers are built: give their heap back (several KB)."""
    import sys

    sys.modules.pop("kpnthings.sensors.schema", None)
    globals().pop("schema", None)  # importing a submodule also binds it in its package


def read_all(sensors):
    """Read every sensor once. Returns ``(readings, errors)``.

    readings: the ``(name, value, unit)`` tuples of every sensor that answered; errors: how many
    sensors failed this time. A failing sensor never stops the others or the loop: its error
    text is kept in ``sensor.last_error`` and the next call simply tries it again.
    """
    readings = []
    errors = 0
    for sensor in sensors:
        try:
            values = sensor.read()
        except Exception as e:  # firmware drivers raise bare Exception (dht, ds18x20) too
            errors += 1
            sensor.last_error = "%s: %s" % (getattr(sensor, "label", "sensor"), describe(e))
            continue
        sensor.last_error = None
        readings.extend(values)
    return readings, errors


class Readings:
    """The loop's readings source when config.json lists sensors: the board's own readings
    plus the drivers'; a configured sensor's name wins over the board's reading of the same
    name (the unix board simulates temperature too). Here, not in kpnthings.app, so a device
    without sensors never holds it."""

    def __init__(self, board, drivers, log=print):
        self.board = board
        self.CLOCK_TRUSTED = getattr(board, "CLOCK_TRUSTED", False)
        self._drivers = drivers
        self.log = log

    def read_sensors(self):
        readings, errors = read_all(self._drivers)
        if errors:
            for driver in self._drivers:
                if getattr(driver, "last_error", None):
                    self.log("[kpn] sensor failed: %s" % driver.last_error)
        taken = set(r[0] for r in readings)
        try:
            own = [r for r in self.board.read_sensors() if r[0] not in taken]
        except Exception as e:  # the board's sensor must not hide the others
            self.log("[kpn] board sensors failed: %s" % (e,))
            own = []
            errors += 1
        out = own + readings
        if errors:
            out.append(("sensorErrors", errors, None))
        return out


# --- building -------------------------------------------------------------------------------


class _Context:
    """What drivers share while being built: the machine module, the clock, and bus objects
    (one I2C or one-wire object per set of pins, however many sensors hang on it)."""

    def __init__(self, machine, clock):
        self.machine = machine
        self.clock = clock
        self._buses = {}

    def shared(self, key, make):
        bus = self._buses.get(key)
        if bus is None:
            bus = make()
            self._buses[key] = bus
        return bus


def input_pin(machine, pin_id, pull):
    """An input Pin with config's pull ("up", "down" or None); shared by digital and counter."""
    Pin = machine.Pin
    pull = {"up": Pin.PULL_UP, "down": Pin.PULL_DOWN}.get(pull)
    if pull is None:
        return Pin(pin_id, Pin.IN)
    return Pin(pin_id, Pin.IN, pull)


def _driver_class(kind):
    # Explicit imports (not __import__ of a computed name) so mpy-cross and freezing see them.
    if kind in ("dht22", "dht11"):
        from kpnthings.sensors import dht as mod
    elif kind == "ds18b20":
        from kpnthings.sensors import ds18b20 as mod
    elif kind in ("bme280", "bmp280"):
        from kpnthings.sensors import bme280 as mod
    elif kind == "analog":
        from kpnthings.sensors import analog as mod
    elif kind == "digital":
        from kpnthings.sensors import digital as mod
    else:
        from kpnthings.sensors import counter as mod
    return mod.Sensor


def describe(exc):
    """Short text for an exception from a driver or the firmware below it, alike on every port
    (CPython prints OSError(110) as "110", MicroPython as "[Errno 110] ETIMEDOUT")."""
    text = str(exc)
    if isinstance(exc, SensorError) or type(exc) is Exception:  # dht/ds18x20 raise bare ones
        return text or "error"
    if isinstance(exc, OSError) and exc.args:
        code = exc.args[0]
        if code == 110 or code == 116:  # ETIMEDOUT on Linux/rp2 and on ESP-IDF (lwIP numbering)
            return "timeout (OSError %d)" % code
        if code == 19:
            return "no answer (OSError 19, ENODEV)"
        if isinstance(code, int):
            return "OSError %d" % code
    name = type(exc).__name__
    return name + (": " + text if text else "")
