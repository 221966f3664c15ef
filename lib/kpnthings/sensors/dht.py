"""DHT22 / DHT11 temperature and humidity, through the firmware's own ``dht`` module.

The firmware times the single-wire protocol in C (``dht_readinto``); this driver adds what the
loop needs: errors as SensorError, implausible frames rejected, and the sensor's minimum
sampling period respected (a DHT22 read more often than every 2 s answers with stale data or
times out), by handing back the previous reading instead of asking again too soon.
"""

from kpnthings.sensors import Driver, SensorError, describe

# Minimum time between two measurements, from the sensors' datasheets.
_MIN_PERIOD_MS = {"dht22": 2000, "dht11": 1000}
# What each part can measure; anything outside is a corrupted frame that happened to pass the
# 8-bit checksum (an all-zero frame does, for one).
_RANGE = {"dht22": (-40.0, 80.0), "dht11": (0.0, 50.0)}


class Sensor(Driver):
    def __init__(self, entry, ctx):
        super().__init__(entry)
        import dht  # the firmware's module (a simulated one on the host)

        self.kind = entry["type"]
        self._clock = ctx.clock
        machine = ctx.machine
        # The data line idles high: the internal pull-up helps, the module's 10k does the job.
        pin = machine.Pin(entry["pin"], machine.Pin.IN, machine.Pin.PULL_UP)
        self._dev = dht.DHT22(pin) if self.kind == "dht22" else dht.DHT11(pin)
        self._last = None  # (ticks_ms, readings) of the last good measurement

    def read(self):
        clock = self._clock
        now = clock.ticks_ms()
        last = self._last
        if last is not None and clock.ticks_diff(now, last[0]) < _MIN_PERIOD_MS[self.kind]:
            return last[1]
        try:
            self._dev.measure()
            # The parts resolve 0.1 units; rounding drops the float noise of "raw * 0.1".
            temperature = round(self._dev.temperature(), 1)
            humidity = round(self._dev.humidity(), 1)
        except Exception as e:  # OSError on timeout, bare Exception("checksum error")
            raise SensorError("%s: %s" % (self.kind, describe(e))) from None
        low, high = _RANGE[self.kind]
        if temperature == 0 and humidity == 0:
            raise SensorError("%s: empty frame (no sensor on the pin?)" % self.kind)
        if not (low <= temperature <= high and 0 <= humidity <= 100):
            raise SensorError(
                "%s: implausible frame (%s Cel, %s %%RH)" % (self.kind, temperature, humidity)
            )
        readings = [
            (self.names[0], temperature, "Cel"),
            (self.names[1], humidity, "%RH"),
        ]
        self._last = (now, readings)
        return readings
