"""DS18B20 temperature on a one-wire bus, through the firmware's ``onewire`` and ``ds18x20``.

A DS18B20 needs up to 750 ms to convert at 12-bit resolution. Blocking that long every cycle
would stall the loop, so conversions are pipelined: a read takes the result of the conversion
started after the previous read, then starts the next one. Only the first read of a pin (or the
first after an error) waits, and only for what is left of the 750 ms. The price: a reading is as
old as the loop interval. Several DS18B20 may share one pin when each entry names its ``rom``:
one conversion command (SKIP ROM) serves them all, so they add no waiting. Without a ``rom``
the first DS18x20 the bus search finds is used. A reading of exactly 85 Cel is the
scratchpad's power-on value (the sensor browned out before converting) and is counted as an
error, as most DS18B20 drivers do; a real 85 Cel is far outside bench use.
"""

from kpnthings.sensors import Driver, SensorError, describe

_CONVERSION_MS = 750  # 12-bit resolution, the power-on default
_FAMILIES = (0x10, 0x22, 0x28)  # DS18S20, DS1822, DS18B20
_POWER_ON_VALUE = 85.0  # scratchpad content before any conversion finished


class _Bus:
    """One pin's DS18X20 object and its conversion state, shared by the entries on that pin."""

    def __init__(self, ds, clock):
        self.ds = ds
        self.clock = clock
        self.started = None  # ticks_ms of the last Convert T, None when none is known
        self.ready = False  # the scratchpads hold a finished conversion

    def age(self):
        return self.clock.ticks_diff(self.clock.ticks_ms(), self.started)

    def convert(self):
        self.ds.convert_temp()  # SKIP ROM: every sensor on the pin converts
        self.started = self.clock.ticks_ms()

    def wait_ready(self):
        if self.ready:
            return  # a restarted conversion leaves the last finished result readable
        if self.started is None:
            self.convert()
        wait = _CONVERSION_MS - self.age()
        if wait > 0:
            self.clock.sleep_ms(wait)
        self.ready = True

    def next_conversion(self):
        # Once per cycle: the first entry to read restarts the conversion, the others on the
        # pin read the finished one before it and leave the new one running.
        if self.age() >= _CONVERSION_MS:
            self.convert()

    def reset(self):
        self.started = None
        self.ready = False


class Sensor(Driver):
    def __init__(self, entry, ctx):
        super().__init__(entry)
        import ds18x20
        import onewire

        pin_id = entry["pin"]
        machine = ctx.machine
        clock = ctx.clock

        def make_bus():
            return _Bus(ds18x20.DS18X20(onewire.OneWire(machine.Pin(pin_id))), clock)

        # Made on the first read: a pin that cannot be set up is then a counted read error,
        # not a boot failure.
        self._open_bus = lambda: ctx.shared(("onewire", pin_id), make_bus)
        self._bus = None
        self._rom = bytes(_unhex(entry["rom"])) if entry.get("rom") else None
        self._pinned = self._rom is not None

    def read(self):
        try:
            if self._bus is None:
                self._bus = self._open_bus()
            bus = self._bus
            if self._rom is None:
                self._rom = self._find()
            bus.wait_ready()
            temperature = bus.ds.read_temp(self._rom)
            bus.next_conversion()
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

    def _forget(self):
        if self._bus is not None:
            self._bus.reset()  # convert and wait again before the next read on this pin
        if not self._pinned:
            self._rom = None  # search again: the sensor may have been swapped

    def _find(self):
        for rom in self._bus.ds.scan():
            if rom[0] in _FAMILIES:
                return bytes(rom)
        raise SensorError("ds18b20: no DS18x20 answered on the bus")


def _unhex(text):
    return [int(text[i : i + 2], 16) for i in range(0, len(text), 2)]
