"""DS18B20 temperature on a one-wire bus, through the firmware's ``onewire`` and ``ds18x20``.

A DS18B20 needs up to 750 ms to convert at 12-bit resolution. Blocking that long every cycle
would stall the loop, so conversions are pipelined: each read takes the result of the
conversion started at the end of the previous read, then starts the next one. Only the first
read (or the first after an error) waits, and only for what is left of the 750 ms. The price:
a reading is as old as the loop interval. Several DS18B20 may share one pin when each entry
names its ``rom``; without one, the first DS18x20 the bus search finds is used. A reading of
exactly 85 Cel is the scratchpad's power-on value (the sensor browned out before converting) and
is counted as an error, as most DS18B20 drivers do; a real 85 Cel is far outside bench use.
"""

from kpnthings.sensors import SensorError, describe

_CONVERSION_MS = 750  # 12-bit resolution, the power-on default
_FAMILIES = (0x10, 0x22, 0x28)  # DS18S20, DS1822, DS18B20
_POWER_ON_VALUE = 85.0  # scratchpad content before any conversion finished


class Sensor:
    label = "sensor"  # build() sets "sensors[<index>] (<type>)" for error messages

    def __init__(self, entry, ctx):
        import ds18x20
        import onewire

        self.names = entry["names"]
        self.last_error = None
        self._clock = ctx.clock
        pin_id = entry["pin"]
        machine = ctx.machine

        def make_bus():
            return ds18x20.DS18X20(onewire.OneWire(machine.Pin(pin_id)))

        # One DS18X20 object per pin, shared by every sensor entry on that pin, made on the
        # first read: a pin that cannot be set up is then a counted read error, not a boot
        # failure.
        self._open_bus = lambda: ctx.shared(("onewire", pin_id), make_bus)
        self._bus = None
        self._rom = bytes(_unhex(entry["rom"])) if entry.get("rom") else None
        self._pinned = self._rom is not None
        self._started = None  # ticks_ms of the conversion in flight, None when none is

    def read(self):
        try:
            if self._bus is None:
                self._bus = self._open_bus()
            if self._rom is None:
                self._rom = self._find()
            if self._started is None:
                self._start()
            wait = _CONVERSION_MS - self._clock.ticks_diff(self._clock.ticks_ms(), self._started)
            if wait > 0:
                self._clock.sleep_ms(wait)
            temperature = self._bus.read_temp(self._rom)
            self._start()  # pipelined: the next read finds this conversion done
        except SensorError:
            self._forget()
            raise
        except Exception as e:  # OSError, onewire.OneWireError, bare Exception("CRC error")
            self._forget()
            if type(e).__name__ == "OneWireError":  # raised bare: say what it means
                raise SensorError("ds18b20: no presence pulse, nothing on the bus") from None
            raise SensorError("ds18b20: %s" % describe(e)) from None
        if temperature == _POWER_ON_VALUE:
            # The sensor lost power since the conversion started (or never converted).
            self._forget()
            raise SensorError("ds18b20: power-on value 85 Cel, sensor was reset")
        if not -55.0 <= temperature <= 125.0:
            self._forget()
            raise SensorError("ds18b20: implausible value %s Cel" % temperature)
        return [(self.names[0], round(temperature, 4), "Cel")]

    def _start(self):
        self._bus.convert_temp()
        self._started = self._clock.ticks_ms()

    def _forget(self):
        self._started = None
        if not self._pinned:
            self._rom = None  # search again: the sensor may have been swapped

    def _find(self):
        for rom in self._bus.scan():
            if rom[0] in _FAMILIES:
                return bytes(rom)
        raise SensorError("ds18b20: no DS18x20 answered on the bus")


def _unhex(text):
    return [int(text[i : i + 2], 16) for i in range(0, len(text), 2)]
