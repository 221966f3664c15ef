"""A simulated I2C bus and a BME280/BMP280 on it, with Bosch's example calibration (simbus)."""

ENODEV = 19


class SimI2CBus:
    def __init__(self):
        self.devices = {}  # address -> device with read(reg, n) / write(reg, data)


class SimI2C:
    """machine.I2C / machine.SoftI2C: the memory-style calls the drivers use."""

    _world = None

    def __init__(self, *args, **kw):
        sda = kw["sda"]
        scl = kw["scl"]
        key = (sda.id, scl.id)
        bus = self._world.i2c.get(key)
        if bus is None:
            bus = self._world.i2c[key] = SimI2CBus()
        self.bus = bus
        self.freq = kw.get("freq")

    def _device(self, addr):
        self._world.tick()
        device = self.bus.devices.get(addr)
        if device is None or device.fail == "absent":
            raise OSError(ENODEV)  # no ACK: what both hardware and soft I2C raise
        return device

    def scan(self):
        return sorted(a for a, d in self.bus.devices.items() if d.fail != "absent")

    def readfrom_mem(self, addr, reg, n):
        return bytes(self._device(addr).read(reg, n))

    def readfrom_mem_into(self, addr, reg, buf):
        data = self._device(addr).read(reg, len(buf))
        for i in range(len(buf)):
            buf[i] = data[i]

    def writeto_mem(self, addr, reg, buf):
        self._device(addr).write(reg, bytes(buf))


# Bosch's worked example (BMP280 datasheet BST-BMP280-DS001, section 3.12): these trimming
# words with adc_T = 519888, adc_P = 415148 give 25.08 Cel and 100653.27 Pa.
BOSCH_EXAMPLE_CAL = {
    "T1": 27504, "T2": 26435, "T3": -1000,
    "P1": 36477, "P2": -10685, "P3": 3024, "P4": 2855, "P5": 140, "P6": -7,
    "P7": 15500, "P8": -14600, "P9": 6000,
    # Humidity words of a real part (Bosch publishes no humidity example).
    "H1": 75, "H2": 362, "H3": 0, "H4": 313, "H5": 50, "H6": 30,
}  # fmt: skip


class SimBME280:
    """A BME280 (chip id 0x60; 0x58 makes a BMP280) holding its registers.

    Writing forced mode to ctrl_meas (0xF4) starts a measurement: the status register's
    "measuring" bit is set for ``measure_ms`` of the world's clock, then the raw ``adc_*``
    values land in 0xF7..0xFE. ``fail`` = "absent" (no ACK), "stuck" (never finishes) or
    "skipped" (finishes without data, as after a reset with oversampling off)."""

    def __init__(self, address=0x76, chip_id=0x60, cal=None, adc_t=519888, adc_p=415148,
                 adc_h=27000, measure_ms=8):  # fmt: skip
        self.address = address
        self.chip_id = chip_id
        self.adc_t = adc_t
        self.adc_p = adc_p
        self.adc_h = adc_h
        self.measure_ms = measure_ms
        self.fail = None
        self.clock = None
        self.measurements = 0
        self.regs = bytearray(256)
        self.regs[0xD0] = chip_id
        self.set_calibration(cal or BOSCH_EXAMPLE_CAL)
        # Reset values of the data registers: 0x80000 for P and T, 0x8000 for H.
        self._store(0x80000, 0x80000, 0x8000)
        self._done_at = None

    def set_calibration(self, cal):
        r = self.regs
        words = ("T1", "T2", "T3", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9")
        for i, name in enumerate(words):
            v = cal[name] & 0xFFFF
            r[0x88 + 2 * i] = v & 0xFF
            r[0x89 + 2 * i] = v >> 8
        if "H1" in cal:
            r[0xA1] = cal["H1"]
            h2 = cal["H2"] & 0xFFFF
            r[0xE1] = h2 & 0xFF
            r[0xE2] = h2 >> 8
            r[0xE3] = cal["H3"]
            h4 = cal["H4"] & 0xFFF
            h5 = cal["H5"] & 0xFFF
            r[0xE4] = h4 >> 4
            r[0xE5] = (h4 & 0x0F) | ((h5 & 0x0F) << 4)
            r[0xE6] = h5 >> 4
            r[0xE7] = cal["H6"] & 0xFF

    def _store(self, adc_p, adc_t, adc_h):
        r = self.regs
        r[0xF7] = (adc_p >> 12) & 0xFF
        r[0xF8] = (adc_p >> 4) & 0xFF
        r[0xF9] = (adc_p & 0x0F) << 4
        r[0xFA] = (adc_t >> 12) & 0xFF
        r[0xFB] = (adc_t >> 4) & 0xFF
        r[0xFC] = (adc_t & 0x0F) << 4
        r[0xFD] = (adc_h >> 8) & 0xFF
        r[0xFE] = adc_h & 0xFF

    def _update(self):
        if (
            self._done_at is not None
            and self.fail != "stuck"
            and self.clock.ticks_ms() >= self._done_at
        ):
            self._done_at = None
            if self.fail != "skipped":
                self._store(self.adc_p, self.adc_t, self.adc_h)
            self.regs[0xF3] &= ~0x08
            self.regs[0xF4] &= ~0x03  # back to sleep mode after a forced measurement

    def read(self, reg, n):
        self._update()
        return [self.regs[(reg + i) & 0xFF] for i in range(n)]

    def write(self, reg, data):
        for i, b in enumerate(data):
            self.regs[(reg + i) & 0xFF] = b
        if reg <= 0xF4 < reg + len(data) and self.regs[0xF4] & 0x03 in (1, 2):
            self.measurements += 1
            self.regs[0xF3] |= 0x08
            self._done_at = self.clock.ticks_ms() + self.measure_ms
