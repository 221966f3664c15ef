"""An analog input scaled linearly to a quantity: a soil probe, a potentiometer, a battery divider.

Reads ``machine.ADC.read_u16()`` (the one call every port has) and reduces it to ``bits`` bits
(default 12, the native width of both the ESP32 and RP2040 converters, so ``scale`` inputs read
0..4095 on either board). Several samples are averaged against noise. ``scale``
[in_min, in_max, out_min, out_max] maps raw to the configured unit; without it the raw value is
reported. On ESP32 only ADC1 pins (GPIO32-39) work while Wi-Fi is on, and ``atten`` (dB) sets
the input range: 11 dB reads up to about 3.1 V, the default 0 dB only to about 1 V. Ports
without attenuation ignore ``atten``.
"""

from kpnthings.sensors import Driver

_ATTEN_NAMES = {0: "ATTN_0DB", 2.5: "ATTN_2_5DB", 6: "ATTN_6DB", 11: "ATTN_11DB"}


class Sensor(Driver):
    def __init__(self, entry, ctx):
        super().__init__(entry)
        machine = ctx.machine
        self._unit = entry["unit"]
        self._shift = 16 - entry["bits"]
        self._samples = entry["samples"]
        self._scale = entry["scale"]
        self._clamp = entry["clamp"]
        self._adc = machine.ADC(machine.Pin(entry["pin"]))
        atten = entry["atten"]
        const = getattr(machine.ADC, _ATTEN_NAMES[atten], None) if atten is not None else None
        # Ports without attenuation (the RP2040 always reads 0-3.3 V) ignore the setting, so
        # one config serves an ESP32 and a Pico W alike.
        if const is not None and callable(getattr(self._adc, "atten", None)):
            self._adc.atten(const)

    def read(self):
        total = 0
        for _ in range(self._samples):
            total += self._adc.read_u16()
        raw = (total // self._samples) >> self._shift
        if self._scale is None:
            return [(self.names[0], raw, self._unit)]
        in_min, in_max, out_min, out_max = self._scale
        value = out_min + (raw - in_min) * (out_max - out_min) / (in_max - in_min)
        if self._clamp:
            low, high = (out_min, out_max) if out_min <= out_max else (out_max, out_min)
            value = low if value < low else high if value > high else value
        # Four significant decimals are far below any 12-bit converter's resolution.
        return [(self.names[0], round(value, 4), self._unit)]
