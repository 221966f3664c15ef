"""The settings each sensor type has beyond its pin, checked for kpnthings_tools.sensors_check:
a DS18B20's ROM code, a BME280's I2C bus and address, an analog input's unit, scale, width and
sampling, a digital input's pull and inversion, a counter's edge and debounce.

Every check fills the normalised entry `norm` and raises SensorConfigError (made by fail())
naming the entry, its type and the field.
"""

from kpnthings.sensors import SensorConfigError

_I2C_ADDRESSES = (0x76, 0x77)  # SDO to GND / SDO to VDD
_ATTEN_DB = (0, 2.5, 6, 11)  # ESP32 ADC attenuations


def fail(index, kind, field, message):
    """The error to raise (callers write ``raise fail(...)`` so every exit is visible)."""
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


def check_pin(index, kind, field, pin, board_pins, rules=None):
    if not (_is_int(pin) or isinstance(pin, str)) or pin == "":
        raise fail(
            index, kind, field, "must be a GPIO number (or the board's pin name), got %r" % (pin,)
        )
    why = rules.AVOID.get(pin) if rules is not None else None
    if why:
        raise fail(index, kind, field, "pin %r must stay free: %s" % (pin, why))
    if board_pins is not None and pin not in board_pins:
        raise fail(index, kind, field, "this board has no pin %r" % (pin,))
    return pin


def _check_ds18b20(index, kind, entry, norm, board_pins, adc_pins, rules):
    rom = entry.get("rom")
    if rom is not None:
        text = rom.lower().replace(":", "").replace("-", "") if isinstance(rom, str) else ""
        if len(text) != 16 or any(c not in "0123456789abcdef" for c in text):
            raise fail(index, kind, "rom", "must be the sensor's 64-bit ROM code as 16 hex digits")
        if text[:2] not in ("28", "10", "22"):
            raise fail(
                index, kind, "rom", "family code %s is not a DS18x20 (28, 10 or 22)" % text[:2]
            )
        rom = text
    norm["rom"] = rom


def _check_bme280(index, kind, entry, norm, board_pins, adc_pins, rules):
    bus = entry.get("i2c")
    if not isinstance(bus, dict) or "sda" not in bus or "scl" not in bus:
        raise fail(
            index, kind, "i2c", 'must be {"sda": <pin>, "scl": <pin>} (optional "id", "freq")'
        )
    for key in sorted(bus):
        if key not in ("sda", "scl", "id", "freq"):
            raise fail(index, kind, "i2c." + key, "not an I2C setting (sda, scl, id, freq)")
    sda = check_pin(index, kind, "i2c.sda", bus["sda"], board_pins, rules)
    scl = check_pin(index, kind, "i2c.scl", bus["scl"], board_pins, rules)
    if sda == scl:
        raise fail(index, kind, "i2c", "sda and scl must be different pins")
    bus_id = bus.get("id")
    if bus_id is not None and not (_is_int(bus_id) and 0 <= bus_id <= 7):
        raise fail(
            index,
            kind,
            "i2c.id",
            "must be a hardware I2C bus number (0, 1); leave out for software I2C",
        )
    freq = bus.get("freq", 100000)
    if not _is_int(freq) or not 10000 <= freq <= 1000000:
        raise fail(index, kind, "i2c.freq", "must be a frequency in Hz between 10000 and 1000000")
    norm["i2c"] = {"sda": sda, "scl": scl, "id": bus_id, "freq": freq}
    address = entry.get("address", 0x76)
    if isinstance(address, str):
        try:
            address = int(address, 16) if address[:2].lower() == "0x" else int(address)
        except ValueError:
            raise fail(
                index, kind, "address", "must be 118 (0x76) or 119 (0x77), got %r" % (address,)
            ) from None
    if not _is_int(address) or address not in _I2C_ADDRESSES:
        raise fail(index, kind, "address", "must be 118 (0x76) or 119 (0x77), got %r" % (address,))
    norm["address"] = address


def _check_analog(index, kind, entry, norm, board_pins, adc_pins, rules):
    if adc_pins is not None and norm["pin"] not in adc_pins:
        raise fail(
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
        raise fail(index, kind, "unit", 'must be a short SenML unit such as "V" or "%RH"')
    norm["unit"] = unit
    bits = entry.get("bits", 12)
    if not _is_int(bits) or not 8 <= bits <= 16:
        raise fail(
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
            raise fail(
                index, kind, "scale", "must be [in_min, in_max, out_min, out_max], four numbers"
            )
        if scale[0] == scale[1]:
            raise fail(index, kind, "scale", "in_min and in_max must differ")
        top = (1 << bits) - 1
        if not (0 <= scale[0] <= top and 0 <= scale[1] <= top):
            raise fail(
                index,
                kind,
                "scale",
                "inputs must lie within the %d-bit raw range 0..%d" % (bits, top),
            )
        scale = list(scale)
    norm["scale"] = scale
    samples = entry.get("samples", 4)
    if not _is_int(samples) or not 1 <= samples <= 64:
        raise fail(index, kind, "samples", "must be a whole number from 1 to 64")
    norm["samples"] = samples
    atten = entry.get("atten")
    if atten is not None and (not _is_number(atten) or atten not in _ATTEN_DB):
        raise fail(index, kind, "atten", "must be an ESP32 attenuation in dB: 0, 2.5, 6 or 11")
    norm["atten"] = atten
    clamp = entry.get("clamp", False)
    if not isinstance(clamp, bool):
        raise fail(index, kind, "clamp", "must be true or false")
    norm["clamp"] = clamp


def _check_pull(index, kind, entry, default):
    pull = entry.get("pull", default)
    if pull not in (None, "up", "down"):
        raise fail(index, kind, "pull", 'must be "up", "down" or null')
    return pull


def _check_digital(index, kind, entry, norm, board_pins, adc_pins, rules):
    norm["pull"] = _check_pull(index, kind, entry, None)
    invert = entry.get("invert", False)
    if not isinstance(invert, bool):
        raise fail(index, kind, "invert", "must be true or false")
    norm["invert"] = invert


def _check_counter(index, kind, entry, norm, board_pins, adc_pins, rules):
    # Meter pulse outputs are usually open collector: pulled up, pulse pulls low.
    norm["pull"] = _check_pull(index, kind, entry, "up")
    edge = entry.get("edge", "falling")
    if edge not in ("rising", "falling", "both"):
        raise fail(index, kind, "edge", 'must be "rising", "falling" or "both"')
    norm["edge"] = edge
    debounce = entry.get("debounce_ms", 0)
    if not _is_int(debounce) or not 0 <= debounce <= 1000:
        raise fail(
            index, kind, "debounce_ms", "must be a whole number of milliseconds from 0 to 1000"
        )
    norm["debounce_ms"] = debounce


# type -> the check of its settings; a type without one has only a pin and names.
CHECKS = {
    "ds18b20": _check_ds18b20,
    "bme280": _check_bme280,
    "bmp280": _check_bme280,
    "analog": _check_analog,
    "digital": _check_digital,
    "counter": _check_counter,
}
