"""The config's ``sensors`` list: its full check, on the host (kpnthings_tools.config_check).

Every mistake raises SensorConfigError naming the entry, its type and the field. Every reading
gets a unique SenML name: KPN's (``temperature``, ``humidity``, ``pressure``, ``counter``...) with
2, 3... for the second and third of a kind, or the one the config gives.

The board runs a short check of its own at every boot (kpnthings.sensors.schema: types, ranges,
pins in the board's set, defaults, names, and the board's pin rules, whose messages both checks
share through schema.pin_problem); this one adds what the board trusts: unknown fields, pins
shared by two sensors or with an actuator, I2C buses and addresses, DS18B20 family codes and
shared one-wire pins, names that are not SenML names or are taken twice, a scale outside the raw
range. config_check makes sure both agree on the normalised entries.
"""

from kpnthings.sensors import SensorConfigError
from kpnthings.sensors.schema import KINDS, pin_problem

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
_LOOP_NAMES = ("sensorErrors", "downlink", "droppedReadings", "timeQuality", "undatedReadings")

_I2C_ADDRESSES = (0x76, 0x77)  # SDO to GND / SDO to VDD
_ATTEN_DB = (0, 2.5, 6, 11)  # ESP32 ADC attenuations
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


def _fail(index, kind, field, message):
    """The error to raise (callers write ``raise _fail(...)`` so every exit is visible)."""
    where = "sensors[%d]" % index
    if kind:
        where += " (%s)" % kind
    if field:
        where += ': field "%s"' % field
    return SensorConfigError(where + ": " + message)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_pin(index, kind, field, pin, board_pins, rules=None):
    if not (_is_int(pin) or isinstance(pin, str)) or pin == "":
        raise _fail(
            index, kind, field, "must be a GPIO number (or the board's pin name), got %r" % (pin,)
        )
    why = rules.AVOID.get(pin) if rules is not None else None
    if why:
        raise _fail(index, kind, field, "pin %r must stay free: %s" % (pin, why))
    if board_pins is not None and pin not in board_pins:
        raise _fail(index, kind, field, "this board has no pin %r" % (pin,))
    return pin


def _check_entry(index, entry, board_pins, adc_pins, rules):
    if not isinstance(entry, dict):
        raise _fail(index, None, None, 'must be an object like {"type": "dht22", "pin": 4}')
    kind = entry.get("type")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise _fail(
            index, None, "type", "unknown sensor type %r; known: %s" % (kind, ", ".join(types()))
        )
    allowed = _FIELDS[kind]
    for key in sorted(entry):
        if key != "type" and key not in allowed:
            raise _fail(
                index, kind, key, "not a setting of %s (allowed: %s)" % (kind, ", ".join(allowed))
            )
    norm = {}  # the normalised entry: every field checked, every default filled in
    norm["type"] = kind
    if "pin" in allowed:
        if "pin" not in entry:
            raise _fail(index, kind, "pin", "missing")
        norm["pin"] = _check_pin(index, kind, "pin", entry["pin"], board_pins, rules)
    check = _CHECKS.get(kind)
    if check is not None:
        check(index, kind, entry, norm, board_pins, adc_pins, rules)
    if rules is not None:  # the board's rules, now that the pull is known
        for field, pin in pins_of(norm):
            why = pin_problem(rules, kind, pin, norm.get("pull"))
            if why:
                raise _fail(index, kind, field, why)
    if "name" in entry:
        name = entry["name"]
        if not _valid_name(name):
            raise _fail(index, kind, "name", _name_rule(name))
        norm["name"] = name
    if "name" in entry and "names" in entry:
        raise _fail(index, kind, "names", 'give "name" or "names", not both')
    if "names" in entry:
        names = entry["names"]
        count = len(quantities(kind))
        if not isinstance(names, (list, tuple)) or len(names) != count:
            raise _fail(
                index,
                kind,
                "names",
                "must list %d names: %s" % (count, ", ".join(quantities(kind))),
            )
        for name in names:
            if not _valid_name(name):
                raise _fail(index, kind, "names", _name_rule(name))
        norm["names"] = list(names)
    return norm


def pins_of(norm):
    """(field, pin) for each pin a normalised entry uses."""
    bus = norm.get("i2c")
    if bus is not None:
        return (("i2c.sda", bus["sda"]), ("i2c.scl", bus["scl"]))
    return (("pin", norm["pin"]),)


def _check_ds18b20(index, kind, entry, norm, board_pins, adc_pins, rules):
    rom = entry.get("rom")
    if rom is not None:
        text = rom.lower().replace(":", "").replace("-", "") if isinstance(rom, str) else ""
        if len(text) != 16 or any(c not in "0123456789abcdef" for c in text):
            raise _fail(index, kind, "rom", "must be the sensor's 64-bit ROM code as 16 hex digits")
        if text[:2] not in ("28", "10", "22"):
            raise _fail(
                index, kind, "rom", "family code %s is not a DS18x20 (28, 10 or 22)" % text[:2]
            )
        rom = text
    norm["rom"] = rom


def _check_bme280(index, kind, entry, norm, board_pins, adc_pins, rules):
    bus = entry.get("i2c")
    if not isinstance(bus, dict) or "sda" not in bus or "scl" not in bus:
        raise _fail(
            index, kind, "i2c", 'must be {"sda": <pin>, "scl": <pin>} (optional "id", "freq")'
        )
    for key in sorted(bus):
        if key not in ("sda", "scl", "id", "freq"):
            raise _fail(index, kind, "i2c." + key, "not an I2C setting (sda, scl, id, freq)")
    sda = _check_pin(index, kind, "i2c.sda", bus["sda"], board_pins, rules)
    scl = _check_pin(index, kind, "i2c.scl", bus["scl"], board_pins, rules)
    if sda == scl:
        raise _fail(index, kind, "i2c", "sda and scl must be different pins")
    bus_id = bus.get("id")
    if bus_id is not None and not (_is_int(bus_id) and 0 <= bus_id <= 7):
        raise _fail(
            index,
            kind,
            "i2c.id",
            "must be a hardware I2C bus number (0, 1); leave out for software I2C",
        )
    freq = bus.get("freq", 100000)
    if not _is_int(freq) or not 10000 <= freq <= 1000000:
        raise _fail(index, kind, "i2c.freq", "must be a frequency in Hz between 10000 and 1000000")
    norm["i2c"] = {"sda": sda, "scl": scl, "id": bus_id, "freq": freq}
    address = entry.get("address", 0x76)
    if isinstance(address, str):
        try:
            address = int(address, 16) if address[:2].lower() == "0x" else int(address)
        except ValueError:
            raise _fail(
                index, kind, "address", "must be 118 (0x76) or 119 (0x77), got %r" % (address,)
            ) from None
    if not _is_int(address) or address not in _I2C_ADDRESSES:
        raise _fail(index, kind, "address", "must be 118 (0x76) or 119 (0x77), got %r" % (address,))
    norm["address"] = address


def _check_analog(index, kind, entry, norm, board_pins, adc_pins, rules):
    if adc_pins is not None and norm["pin"] not in adc_pins:
        raise _fail(
            index,
            kind,
            "pin",
            "pin %r cannot read analog values on this board (ADC pins: %s)"
            % (norm["pin"], ", ".join(str(p) for p in sorted(adc_pins, key=str))),
        )
    unit = entry.get("unit")
    if unit is not None and (
        not isinstance(unit, str) or not unit or len(unit) > 16 or any(c in unit for c in '"\\')
    ):
        raise _fail(index, kind, "unit", 'must be a short SenML unit such as "V" or "%RH"')
    norm["unit"] = unit
    bits = entry.get("bits", 12)
    if not _is_int(bits) or not 8 <= bits <= 16:
        raise _fail(
            index, kind, "bits", "must be a whole number from 8 to 16 (the raw reading's width)"
        )
    norm["bits"] = bits
    scale = entry.get("scale")
    if scale is not None:
        if (
            not isinstance(scale, (list, tuple))
            or len(scale) != 4
            or not all(_is_number(x) for x in scale)
        ):
            raise _fail(
                index, kind, "scale", "must be [in_min, in_max, out_min, out_max], four numbers"
            )
        if scale[0] == scale[1]:
            raise _fail(index, kind, "scale", "in_min and in_max must differ")
        top = (1 << bits) - 1
        if not (0 <= scale[0] <= top and 0 <= scale[1] <= top):
            raise _fail(
                index,
                kind,
                "scale",
                "inputs must lie within the %d-bit raw range 0..%d" % (bits, top),
            )
        scale = list(scale)
    norm["scale"] = scale
    samples = entry.get("samples", 4)
    if not _is_int(samples) or not 1 <= samples <= 64:
        raise _fail(index, kind, "samples", "must be a whole number from 1 to 64")
    norm["samples"] = samples
    atten = entry.get("atten")
    if atten is not None and (not _is_number(atten) or atten not in _ATTEN_DB):
        raise _fail(index, kind, "atten", "must be an ESP32 attenuation in dB: 0, 2.5, 6 or 11")
    norm["atten"] = atten
    clamp = entry.get("clamp", False)
    if not isinstance(clamp, bool):
        raise _fail(index, kind, "clamp", "must be true or false")
    norm["clamp"] = clamp


def _check_pull(index, kind, entry, default):
    pull = entry.get("pull", default)
    if pull not in (None, "up", "down"):
        raise _fail(index, kind, "pull", 'must be "up", "down" or null')
    return pull


def _check_digital(index, kind, entry, norm, board_pins, adc_pins, rules):
    norm["pull"] = _check_pull(index, kind, entry, None)
    invert = entry.get("invert", False)
    if not isinstance(invert, bool):
        raise _fail(index, kind, "invert", "must be true or false")
    norm["invert"] = invert


def _check_counter(index, kind, entry, norm, board_pins, adc_pins, rules):
    # Meter pulse outputs are usually open collector: pulled up, pulse pulls low.
    norm["pull"] = _check_pull(index, kind, entry, "up")
    edge = entry.get("edge", "falling")
    if edge not in ("rising", "falling", "both"):
        raise _fail(index, kind, "edge", 'must be "rising", "falling" or "both"')
    norm["edge"] = edge
    debounce = entry.get("debounce_ms", 0)
    if not _is_int(debounce) or not 0 <= debounce <= 1000:
        raise _fail(
            index, kind, "debounce_ms", "must be a whole number of milliseconds from 0 to 1000"
        )
    norm["debounce_ms"] = debounce


_CHECKS = {
    "ds18b20": _check_ds18b20,
    "bme280": _check_bme280,
    "bmp280": _check_bme280,
    "analog": _check_analog,
    "digital": _check_digital,
    "counter": _check_counter,
}


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
            raise _fail(index, kind, field, "pin %r is already used by an actuator" % (pin,))
        other = users.get(pin)
        if other is not None and (share is None or other[2] != share):
            why = "pin %r is already used by sensors[%d] (%s)" % (pin, other[0], other[1])
            if share is not None and other[2] is not None and other[2][0] == share[0] == "i2c":
                why += "; sensors sharing an I2C bus need the same sda, scl, id and freq"
            raise _fail(index, kind, field, why)
        if other is not None and kind == "ds18b20":
            if not norm["rom"] or not other[3]:
                raise _fail(
                    index,
                    kind,
                    "rom",
                    "pin %r also has sensors[%d]: give each DS18B20 on a shared pin its rom"
                    % (pin, other[0]),
                )
            if norm["rom"] == other[3]:
                raise _fail(index, kind, "rom", "sensors[%d] already reads this rom" % other[0])
        users[pin] = (index, kind, share, norm.get("rom"))
    if share is not None and share[0] == "i2c":
        key = (share, norm["address"])
        if key in i2c_addresses:
            raise _fail(
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
                raise _fail(index, kind, field, _name_rule(name))
            if name in taken:
                raise _fail(
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
