"""The config's ``sensors`` entries on the board: checked as the drivers read them, then
normalised (used at boot, by kpnthings.sensors, and dropped once the drivers are built).

The board's short check: the type is known, every field a driver reads has the right type and
range, and the pins are in the board's pin set (analog: its ADC pins) and can do the sensor's
job by the board's pin rules (pin_problem). Each entry comes back with
every default filled in and a ``names`` list: the configured names, else KPN's (``temperature``,
``humidity``...) with 2, 3... for the second and third of a kind. Errors name the entry, its type
and the field. What the host's full check (kpnthings_tools.sensors_check, run by deploy) refuses
before is trusted here: unknown fields, pins shared by two sensors or with an actuator, SenML
names that are invalid or taken twice, a DS18B20 family code, a scale outside the raw range.
"""

import json

from kpnthings.sensors import SensorConfigError

# type -> (its readings' default names, in the order the driver returns them; the settings it
# reads besides its pin, with their defaults). bme280 and bmp280 read an I2C bus, not a pin.
KINDS = {
    "dht22": (("temperature", "humidity"), {}),
    "dht11": (("temperature", "humidity"), {}),
    "ds18b20": (("temperature",), {"rom": None}),
    "bme280": (("temperature", "humidity", "pressure"), {"address": 0x76}),
    "bmp280": (("temperature", "pressure"), {"address": 0x76}),
    "analog": (
        ("analog",),
        {"unit": None, "bits": 12, "scale": None, "samples": 4, "atten": None, "clamp": False},
    ),
    "digital": (("digital",), {"pull": None, "invert": False}),
    "counter": (("counter",), {"pull": "up", "edge": "falling", "debounce_ms": 0}),
}
# What a setting may hold: the values allowed, or a range of whole numbers.
_ALLOWED = {
    "atten": (None, 0, 2.5, 6, 11),  # ESP32 ADC attenuations, dB
    "clamp": (False, True),
    "invert": (False, True),
    "pull": (None, "up", "down"),
    "edge": ("rising", "falling", "both"),
}
_RANGES = {"bits": (8, 16), "samples": (1, 64), "debounce_ms": (0, 1000)}
# Types that drive their line and need it held high by a resistor: DHT, 1-Wire, I2C.
_PULLED_UP = ("dht22", "dht11", "ds18b20", "bme280", "bmp280")


def validate(entries, board_pins, adc_pins=None, reserved_names=None, pin_rules=None):
    """kpnthings.sensors.validate: the checks and the defaults."""
    if type(entries) not in (list, tuple):
        raise SensorConfigError("sensors: must be a list of sensor entries")
    out = [_entry(i, e, board_pins, adc_pins, pin_rules) for i, e in enumerate(entries)]
    # Readings are named in two passes: the names the config gives are taken first.
    taken = {"sensorErrors"}  # the device loop's own record
    taken.update(reserved_names or ())
    for e in out:
        quantities = KINDS[e["type"]][0]
        names = e.pop("name", None)
        if "names" in e:
            names = e["names"]
        elif names is not None and len(quantities) > 1:  # indoor -> indoorTemperature
            names = [names + q[0].upper() + q[1:] for q in quantities]
        elif names is not None:
            names = [names]
        if names is not None:
            taken.update(names)
            e["names"] = names
    for e in out:
        if "names" not in e:
            e["names"] = names = []
            for name in KINDS[e["type"]][0]:
                n = 2
                base = name
                while name in taken:
                    name = base + str(n)
                    n += 1
                taken.add(name)
                names.append(name)
    return out


def _fail(i, kind, field, what):
    where = "sensors[%d]" % i
    if kind:
        where += " (%s)" % kind
    return SensorConfigError('%s: field "%s": %s' % (where, field, what))


def pin_problem(rules, kind, pin, pull=None):
    """Why the board's pin rules (boards/<board>_pins.py) refuse `pin` for a sensor of type
    `kind` whose config asks for `pull` ("up", "down" or None), or None. The host's check
    (kpnthings_tools.sensors_check) asks the same question here."""
    why = ""
    if kind in _PULLED_UP:
        if pin in rules.INPUT_ONLY:
            return "pin %r is input only, and a %s drives its line" % (pin, kind)
        pull = "up"  # its resistor holds the line high through every reset
        why = " (a %s line is)" % kind
    elif pull and pin in rules.NO_PULL:
        why = 'pin %r has no pull resistors, so pull "%s" does nothing: wire one, set "pull": null'
        return why % (pin, pull)
    strap = rules.STRAPPING.get(pin)
    if strap and strap[0] == pull:
        return "pin %r cannot be pulled %s%s: %s" % (pin, pull, why, strap[1])
    return None


def _pin(i, kind, field, pin, board_pins, rules):
    if type(pin) not in (int, str) or pin == "":
        raise _fail(i, kind, field, "must be a GPIO number or the board's pin name")
    why = rules.AVOID.get(pin) if rules is not None else None
    if why:
        raise _fail(i, kind, field, "pin %r must stay free: %s" % (pin, why))
    if board_pins is not None and pin not in board_pins:
        raise _fail(i, kind, field, "this board has no pin %r" % (pin,))
    return pin


def _entry(i, entry, board_pins, adc_pins, rules):
    kind = entry.get("type") if type(entry) is dict else None
    if type(kind) is not str or kind not in KINDS:
        raise _fail(i, None, "type", "must be one of " + ", ".join(sorted(KINDS)))
    quantities, settings = KINDS[kind]
    norm = {}
    norm["type"] = kind
    if kind[:2] == "bm":
        bus = entry.get("i2c")
        if type(bus) is not dict:
            raise _fail(i, kind, "i2c", 'must be {"sda": <pin>, "scl": <pin>}')
        bus = norm["i2c"] = {
            "sda": _pin(i, kind, "i2c.sda", bus.get("sda"), board_pins, rules),
            "scl": _pin(i, kind, "i2c.scl", bus.get("scl"), board_pins, rules),
            "id": bus.get("id"),
            "freq": bus.get("freq", 100000),
        }
        x = bus["id"]
        if x is not None and (type(x) is not int or not 0 <= x <= 7):
            raise _fail(i, kind, "i2c.id", "must be an I2C bus number, or left out")
        x = bus["freq"]
        if type(x) is not int or not 10000 <= x <= 1000000:
            raise _fail(i, kind, "i2c.freq", "must be a whole number of Hz, 10000-1000000")
    else:
        norm["pin"] = _pin(i, kind, "pin", entry.get("pin"), board_pins, rules)
        if kind == "analog" and adc_pins is not None and norm["pin"] not in adc_pins:
            raise _fail(i, kind, "pin", "this board cannot read analog values on it")
    for key in settings:
        x = entry.get(key, settings[key])
        if key == "address":
            if type(x) is str:  # "0x76" or "118"
                try:
                    x = int(x, 16 if x[:2] in ("0x", "0X") else 10)
                except ValueError:
                    pass
            ok = type(x) is int and x in (0x76, 0x77)  # SDO to GND / SDO to VDD
            what = "118 (0x76) or 119 (0x77)"
        elif key == "rom":
            if type(x) is str:  # 28:ff:... or 28-FF-... as printed by tools
                x = x.lower().replace(":", "").replace("-", "")
            ok = x is None or (type(x) is str and len(x) == 16 and not x.strip("0123456789abcdef"))
            what = "the sensor's ROM code as 16 hex digits"
        elif key == "unit":
            ok = x is None or (type(x) is str and x != "")
            what = 'a SenML unit such as "V"'
        elif key == "scale":
            ok = x is None or (
                type(x) in (list, tuple)
                and len(x) == 4
                and not [v for v in x if type(v) not in (int, float)]
                and x[0] != x[1]
            )
            if ok and x is not None:
                x = list(x)
            what = "[in_min, in_max, out_min, out_max], four numbers, in_min and in_max apart"
        elif key in _RANGES:
            lo, hi = _RANGES[key]
            ok = type(x) is int and lo <= x <= hi
            what = "a whole number from %d to %d" % (lo, hi)
        else:  # true/false where the default is one of them, never 0 or 1 (they compare equal)
            ok = x in _ALLOWED[key] and (type(x) is bool) == (type(settings[key]) is bool)
            what = "one of " + json.dumps(_ALLOWED[key])
        if not ok:
            raise _fail(i, kind, key, "must be " + what)
        norm[key] = x
    if rules is not None:  # now that the pull is known
        bus = norm.get("i2c")
        pins = (
            (("i2c.sda", bus["sda"]), ("i2c.scl", bus["scl"])) if bus else (("pin", norm["pin"]),)
        )
        for field, x in pins:
            why = pin_problem(rules, kind, x, norm.get("pull"))
            if why:
                raise _fail(i, kind, field, why)
    names = entry.get("name")
    if names is not None:
        if type(names) is not str or names == "":
            raise _fail(i, kind, "name", 'must be a name such as "indoorTemperature"')
        norm["name"] = names
    names = entry.get("names")
    if names is not None:
        if type(names) not in (list, tuple) or len(names) != len(quantities):
            raise _fail(
                i, kind, "names", "must list %d names: " % len(quantities) + ", ".join(quantities)
            )
        for x in names:
            if type(x) is not str or x == "":
                raise _fail(i, kind, "names", 'must hold names such as "indoorTemperature"')
        norm["names"] = list(names)
    return norm
