"""The config's ``sensors`` list: its full check, on the host (kpnthings_tools.config_check).

Every mistake raises SensorConfigError naming the entry, its type and the field. Every reading
gets a unique SenML name: KPN's (``temperature``, ``humidity``, ``pressure``, ``counter``...) with
2, 3... for the second and third of a kind, or the one the config gives.

The board runs a short check of its own at every boot (kpnthings.sensors.schema: types, ranges,
pins in the board's set, defaults, names, and the board's pin rules, whose messages both checks
share through schema.pin_problem); this one adds what the board trusts: unknown fields, pins
shared by two sensors or with an actuator, I2C buses and addresses, DS18B20 family codes and
shared one-wire pins, names that are not SenML names or are taken twice, a scale outside the raw
range (the settings each type has beyond its pin: sensor_settings_check). config_check makes sure
both agree on the normalised entries.
"""

from kpnthings.sensors import SensorConfigError
from kpnthings.sensors.schema import KINDS, pin_problem

from .emulator_health import HEALTH_NAMES
from .sensor_settings_check import CHECKS, check_pin, fail

# type -> its readings' default names, in the order the driver returns them: KPN's names
# (PROTOCOL.md), the board's own table; the drivers add RFC 8428 units. analog/digital/counter
# take name and unit from the config.
_KINDS = {kind: KINDS[kind][0] for kind in KINDS}

# Fields each type accepts (besides "type"); anything else is a typo worth stopping the boot for.
_FIELDS = {
    "dht22": ("pin", "name", "names"),
    "dht11": ("pin", "name", "names"),
    "ds18b20": ("pin", "rom", "name", "names"),
    "bme280": ("i2c", "address", "name", "names"),
    "bmp280": ("i2c", "address", "name", "names"),
    "analog": ("pin", "name", "names", "unit", "scale", "bits", "samples", "atten", "clamp"),
    "digital": ("pin", "name", "names", "pull", "invert"),
    "counter": ("pin", "name", "names", "pull", "edge", "debounce_ms"),
}

# Names the device loop itself sends; a sensor must not shadow them. "downlink" is the answer
# to a downlink (kpnthings.flush, docs/downlinks.md); "droppedReadings" the count of readings
# the outbox's bound dropped; "timeQuality" and "undatedReadings" how a pack's times were
# obtained (docs/resilience.md, "Time quality").
_LOOP_NAMES = (
    "sensorErrors",
    "downlink",
    "droppedReadings",
    "timeQuality",
    "undatedReadings",
    # the health records (docs/health.md, kpnthings.health), but droppedReadings, named above
    *(n for n in HEALTH_NAMES if n != "droppedReadings"),
)
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-:./_"
_MAX_NAME = 63


def types():
    """The sensor types a config may use, sorted."""
    return sorted(_KINDS)


def quantities(kind):
    """Default measurement names of a sensor type, in the order its readings come out."""
    return _KINDS[kind]


def validate(
    entries, board_pins, adc_pins=None, reserved_pins=None, reserved_names=None, pin_rules=None
):
    """Check the config's ``sensors`` list and return normalised copies of its entries.

    board_pins: the GPIO ids the board has (None skips that check). adc_pins: pins that can
    read analog values (None skips). reserved_pins / reserved_names: pins and record names
    already used elsewhere (actuators). pin_rules: the board's pin rules module
    (boards/<board>_pins.py), or None. Raises SensorConfigError naming entry, type and field.
    Each returned entry has every default filled in and a ``names`` list: one unique, valid
    SenML name per reading. Feeding the result back in returns the same result.
    """
    if not isinstance(entries, (list, tuple)):
        raise SensorConfigError('field "sensors": must be a list of sensor entries')
    out = []
    users = {}  # pin -> (index, kind, share key or None when exclusive, ds18b20 rom)
    i2c_addresses = {}  # (bus key, address) -> index
    for index, entry in enumerate(entries):
        norm = _check_entry(index, entry, board_pins, adc_pins, pin_rules)
        _claim_pins(index, norm, users, i2c_addresses, reserved_pins)
        out.append(norm)
    _assign_names(out, reserved_names)
    return out


def _check_entry(index, entry, board_pins, adc_pins, rules):
    if not isinstance(entry, dict):
        raise fail(index, None, None, 'must be an object like {"type": "dht22", "pin": 4}')
    kind = entry.get("type")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise fail(
            index, None, "type", "unknown sensor type %r; known: %s" % (kind, ", ".join(types()))
        )
    allowed = _FIELDS[kind]
    for key in sorted(entry):
        if key != "type" and key not in allowed:
            raise fail(
                index, kind, key, "not a setting of %s (allowed: %s)" % (kind, ", ".join(allowed))
            )
    norm = {}  # the normalised entry: every field checked, every default filled in
    norm["type"] = kind
    if "pin" in allowed:
        if "pin" not in entry:
            raise fail(index, kind, "pin", "missing")
        norm["pin"] = check_pin(index, kind, "pin", entry["pin"], board_pins, rules)
    check = CHECKS.get(kind)
    if check is not None:
        check(index, kind, entry, norm, board_pins, adc_pins, rules)
    if rules is not None:  # the board's rules, now that the pull is known
        for field, pin in pins_of(norm):
            why = pin_problem(rules, kind, pin, norm.get("pull"))
            if why:
                raise fail(index, kind, field, why)
    if "name" in entry:
        name = entry["name"]
        if not _valid_name(name):
            raise fail(index, kind, "name", _name_rule(name))
        norm["name"] = name
    if "name" in entry and "names" in entry:
        raise fail(index, kind, "names", 'give "name" or "names", not both')
    if "names" in entry:
        names = entry["names"]
        count = len(quantities(kind))
        if not isinstance(names, (list, tuple)) or len(names) != count:
            raise fail(
                index,
                kind,
                "names",
                "must list %d names: %s" % (count, ", ".join(quantities(kind))),
            )
        for name in names:
            if not _valid_name(name):
                raise fail(index, kind, "names", _name_rule(name))
        norm["names"] = list(names)
    return norm


def pins_of(norm):
    """(field, pin) for each pin a normalised entry uses."""
    bus = norm.get("i2c")
    if bus is not None:
        return (("i2c.sda", bus["sda"]), ("i2c.scl", bus["scl"]))
    return (("pin", norm["pin"]),)


def _claim_pins(index, norm, users, i2c_addresses, reserved_pins):
    kind = norm["type"]
    if "i2c" in norm:
        bus = norm["i2c"]
        share = ("i2c", bus["sda"], bus["scl"], bus["id"], bus["freq"])
        claims = (("i2c.sda", bus["sda"]), ("i2c.scl", bus["scl"]))
    elif kind == "ds18b20":
        share = ("onewire", norm["pin"])
        claims = (("pin", norm["pin"]),)
    else:
        share = None
        claims = (("pin", norm["pin"]),)
    for field, pin in claims:
        if reserved_pins is not None and pin in reserved_pins:
            raise fail(index, kind, field, "pin %r is already used by an actuator" % (pin,))
        other = users.get(pin)
        if other is not None and (share is None or other[2] != share):
            why = "pin %r is already used by sensors[%d] (%s)" % (pin, other[0], other[1])
            if share is not None and other[2] is not None and other[2][0] == share[0] == "i2c":
                why += "; sensors sharing an I2C bus need the same sda, scl, id and freq"
            raise fail(index, kind, field, why)
        if other is not None and kind == "ds18b20":
            if not norm["rom"] or not other[3]:
                raise fail(
                    index,
                    kind,
                    "rom",
                    "pin %r also has sensors[%d]: give each DS18B20 on a shared pin its rom"
                    % (pin, other[0]),
                )
            if norm["rom"] == other[3]:
                raise fail(index, kind, "rom", "sensors[%d] already reads this rom" % other[0])
        users[pin] = (index, kind, share, norm.get("rom"))
    if share is not None and share[0] == "i2c":
        key = (share, norm["address"])
        if key in i2c_addresses:
            raise fail(
                index,
                kind,
                "address",
                "address %d is already used on this bus by sensors[%d]"
                % (norm["address"], i2c_addresses[key]),
            )
        i2c_addresses[key] = index


def _valid_name(name):
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME:
        return False
    if name[0] not in _NAME_CHARS[:62]:
        return False
    for c in name:
        if c not in _NAME_CHARS:
            return False
    return True


def _name_rule(name):
    return (
        "%r is not a valid SenML name: 1-%d characters, a letter or digit first, then letters, "
        "digits or - : . / _" % (name, _MAX_NAME)
    )


def _assign_names(entries, reserved_names):
    """Give every reading a unique name: configured names first, then KPN defaults with 2, 3..."""
    taken = {}
    for name in _LOOP_NAMES:
        taken[name] = "the device loop"
    for name in reserved_names or ():
        taken[name] = "an actuator"
    for index, norm in enumerate(entries):
        kind = norm["type"]
        if "names" in norm:
            names = norm["names"]
            field = "names"
        elif "name" in norm:
            field = "name"
            base = norm["name"]
            if len(quantities(kind)) == 1:
                names = [base]
            else:  # a multi-reading sensor's name prefixes its readings: indoorTemperature
                names = [base + q[0].upper() + q[1:] for q in quantities(kind)]
        else:
            continue
        for name in names:
            if not _valid_name(name):
                raise fail(index, kind, field, _name_rule(name))
            if name in taken:
                raise fail(
                    index, kind, field, "name %r is already used by %s" % (name, taken[name])
                )
            taken[name] = "sensors[%d] (%s)" % (index, kind)
        norm.pop("name", None)
        norm["names"] = names
    for index, norm in enumerate(entries):
        if "names" in norm:
            continue
        names = []
        for base in quantities(norm["type"]):
            name = base
            suffix = 2
            while name in taken:
                name = base + str(suffix)
                suffix += 1
            taken[name] = "sensors[%d] (%s)" % (index, norm["type"])
            names.append(name)
        norm["names"] = names
