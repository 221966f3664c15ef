"""A simulated DHT11/DHT22 behind a pin, and the firmware's `dht_readinto` over it (simbus)."""

ETIMEDOUT = 110


class SimDHT:
    """A DHT22 or DHT11 answering with the 5-byte frame its datasheet describes.
    ``fail`` = "timeout" or "checksum" makes the next ``fail_count`` reads fail (None: all)."""

    def __init__(self, kind="dht22", temperature=21.5, humidity=55.0):
        self.kind = kind
        self.temperature = temperature
        self.humidity = humidity
        self.fail = None
        self.fail_count = None
        self.reads = 0

    def fail_next(self, mode, count=None):
        self.fail = mode
        self.fail_count = count

    def frame(self):
        if self.kind == "dht11":
            b = [int(self.humidity), 0, int(self.temperature), 0]
        else:
            h = round(self.humidity * 10)
            t = round(abs(self.temperature) * 10)
            b = [h >> 8, h & 0xFF, (t >> 8) | (0x80 if self.temperature < 0 else 0), t & 0xFF]
        b.append(sum(b) & 0xFF)
        return b


def dht_readinto(pin, buf):
    """The firmware's C routine: fill buf with the 5 frame bytes or raise OSError(ETIMEDOUT)."""
    world = getattr(pin, "_world", None)
    if world is None:  # a plain machine.Pin: nothing simulated is wired to it
        raise OSError(ETIMEDOUT)
    world.tick()
    sensor = world.dht.get(pin.id)
    if sensor is None:
        raise OSError(ETIMEDOUT)
    sensor.reads += 1
    mode = sensor.fail
    if mode is not None and sensor.fail_count is not None:
        sensor.fail_count -= 1
        if sensor.fail_count <= 0:
            sensor.fail = None
    if mode == "timeout":
        raise OSError(ETIMEDOUT)
    frame = sensor.frame()
    if mode == "checksum":
        frame[4] = (frame[4] + 1) & 0xFF
    for i in range(5):
        buf[i] = frame[i]
