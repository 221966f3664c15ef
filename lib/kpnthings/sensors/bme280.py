"""BME280 (temperature, humidity, pressure) and BMP280 (no humidity) over I2C, in forced mode.

Each read triggers one measurement (oversampling x1, filter off: Bosch's "weather monitoring"
setting), waits for it with a deadline, burst-reads the data registers and compensates them
with the integer formulas of the Bosch datasheets (BME280 DS002 section 4.2.3, BMP280 DS001
section 3.11.3): 32-bit for temperature and humidity, 64-bit for pressure. Python integers do
not overflow, and float32 on the boards would lose pressure digits, so the integer versions are
the right ones here. The calibration is read once, on the first successful read.
"""

from kpnthings.sensors import Driver, SensorError, describe

_REG_CALIB_TP = 0x88  # 0x88..0xA1: dig_T1..dig_P9, (0xA0 unused), dig_H1
_REG_CALIB_H = 0xE1  # 0xE1..0xE7: dig_H2..dig_H6
_REG_ID = 0xD0
_REG_CTRL_HUM = 0xF2
_REG_STATUS = 0xF3
_REG_CTRL_MEAS = 0xF4
_REG_CONFIG = 0xF5
_REG_DATA = 0xF7  # 0xF7..0xFC press, temp (20 bit each); 0xFD..0xFE hum (16 bit)

_CHIP_IDS = {"bme280": (0x60,), "bmp280": (0x56, 0x57, 0x58)}
_CTRL_HUM_X1 = 0x01
_CTRL_MEAS_FORCED_X1 = (1 << 5) | (1 << 2) | 0x01  # osrs_t x1, osrs_p x1, forced mode
_STATUS_MEASURING = 0x08
_MEASURE_MS = 10  # datasheet: 9.3 ms max for T, P and H at x1 oversampling
_DEADLINE_MS = 100  # give up on a sensor that never finishes (brown-out, stuck bus)
_SKIPPED = 0x80000  # the P and T registers' reset value (0x8000 for H): no measurement landed


class Calibration:
    """The trimming words, named as in the datasheet (dig_T1 -> T1)."""

    def __init__(self, tp, h=None):
        """tp: the 26 bytes at 0x88..0xA1; h: the 7 bytes at 0xE1..0xE7 (BME280 only)."""
        self.T1 = _u16(tp, 0)
        self.T2 = _s16(tp, 2)
        self.T3 = _s16(tp, 4)
        self.P1 = _u16(tp, 6)
        self.P2 = _s16(tp, 8)
        self.P3 = _s16(tp, 10)
        self.P4 = _s16(tp, 12)
        self.P5 = _s16(tp, 14)
        self.P6 = _s16(tp, 16)
        self.P7 = _s16(tp, 18)
        self.P8 = _s16(tp, 20)
        self.P9 = _s16(tp, 22)
        if h is not None:
            self.H1 = tp[25]
            self.H2 = _s16(h, 0)
            self.H3 = h[2]
            # dig_H4 and dig_H5 are 12-bit signed words sharing the nibbles of 0xE5.
            self.H4 = (_s8(h[3]) << 4) | (h[4] & 0x0F)
            self.H5 = (_s8(h[5]) << 4) | (h[4] >> 4)
            self.H6 = _s8(h[6])


def compensate_temperature(cal, adc_t):
    """Returns (temperature in 0.01 Cel, t_fine), as bmp280_compensate_T_int32."""
    var1 = (((adc_t >> 3) - (cal.T1 << 1)) * cal.T2) >> 11
    var2 = (((((adc_t >> 4) - cal.T1) * ((adc_t >> 4) - cal.T1)) >> 12) * cal.T3) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def compensate_pressure(cal, adc_p, t_fine):
    """Returns pressure in Pa as Q24.8 (divide by 256), as bmp280_compensate_P_int64; 0 when
    the calibration would divide by zero."""
    var1 = t_fine - 128000
    var2 = var1 * var1 * cal.P6
    var2 = var2 + ((var1 * cal.P5) << 17)
    var2 = var2 + (cal.P4 << 35)
    var1 = ((var1 * var1 * cal.P3) >> 8) + ((var1 * cal.P2) << 12)
    var1 = (((1 << 47) + var1) * cal.P1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _cdiv(((p << 31) - var2) * 3125, var1)
    var1 = (cal.P9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.P8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.P7 << 4)


def compensate_humidity(cal, adc_h, t_fine):
    """Returns relative humidity in %RH as Q22.10 (divide by 1024), as
    bme280_compensate_H_int32."""
    x = t_fine - 76800
    # The datasheet's one expression, split in its two factors.
    a = (((adc_h << 14) - (cal.H4 << 20) - (cal.H5 * x)) + 16384) >> 15
    b = (((((x * cal.H6) >> 10) * (((x * cal.H3) >> 11) + 32768)) >> 10) + 2097152) * cal.H2
    x = a * ((b + 8192) >> 14)
    x = x - (((((x >> 15) * (x >> 15)) >> 7) * cal.H1) >> 4)
    x = 0 if x < 0 else x
    x = 419430400 if x > 419430400 else x
    return x >> 12


class Sensor(Driver):
    def __init__(self, entry, ctx):
        super().__init__(entry)
        self.kind = entry["type"]
        self._clock = ctx.clock
        self._address = entry["address"]
        self._humidity = self.kind == "bme280"
        bus = entry["i2c"]
        machine = ctx.machine

        def make_bus():
            pins = {"sda": machine.Pin(bus["sda"]), "scl": machine.Pin(bus["scl"])}
            if bus["id"] is None:  # software I2C works on any pins of any port
                return machine.SoftI2C(freq=bus["freq"], **pins)
            return machine.I2C(bus["id"], freq=bus["freq"], **pins)

        key = ("i2c", bus["sda"], bus["scl"], bus["id"], bus["freq"])
        # Opened on the first read, not at boot: a bus that cannot be opened (pins a hardware
        # bus does not route, a port without SoftI2C) is then a counted read error with its
        # reason in last_error, and every other sensor keeps reporting.
        self._open_bus = lambda: ctx.shared(key, make_bus)
        self._i2c = None
        self._cal = None

    def read(self):
        if self._i2c is None:
            try:
                self._i2c = self._open_bus()
            except Exception as e:  # ValueError (pins), AttributeError (no SoftI2C), OSError
                raise SensorError(
                    "%s: cannot open the I2C bus: %s" % (self.kind, describe(e))
                ) from None
        try:
            if self._cal is None:
                self._cal = self._setup()
            adc_p, adc_t, adc_h = self._measure()
        except SensorError:
            self._cal = None  # a sensor that was swapped or browned out gets set up again
            raise
        except OSError as e:  # NACK (absent or wrong address), bus timeout
            self._cal = None
            raise SensorError(
                "%s at 0x%02x: %s" % (self.kind, self._address, describe(e))
            ) from None
        cal = self._cal
        centi, t_fine = compensate_temperature(cal, adc_t)
        readings = [(self.names[0], centi / 100, "Cel")]
        if self._humidity:
            h = compensate_humidity(cal, adc_h, t_fine)
            readings.append((self.names[1], round(h / 1024, 3), "%RH"))
        p = compensate_pressure(cal, adc_p, t_fine)
        if p == 0:
            raise SensorError("%s: calibration data is invalid" % self.kind)
        readings.append((self.names[-1], round(p / 256, 2), "Pa"))
        return readings

    def _setup(self):
        i2c = self._i2c
        chip = i2c.readfrom_mem(self._address, _REG_ID, 1)[0]
        if chip not in _CHIP_IDS[self.kind]:
            hint = ""
            if chip in _CHIP_IDS["bmp280"]:
                hint = ' (a BMP280: use "type": "bmp280")'
            elif chip in _CHIP_IDS["bme280"]:
                hint = ' (a BME280: use "type": "bme280")'
            raise SensorError(
                "%s at 0x%02x: chip id 0x%02x%s" % (self.kind, self._address, chip, hint)
            )
        tp = i2c.readfrom_mem(self._address, _REG_CALIB_TP, 26)
        h = i2c.readfrom_mem(self._address, _REG_CALIB_H, 7) if self._humidity else None
        if tp[:24] == b"\x00" * 24 or tp[:24] == b"\xff" * 24:
            raise SensorError("%s at 0x%02x: blank calibration" % (self.kind, self._address))
        # Filter off, no standby: forced mode ignores the rest.
        i2c.writeto_mem(self._address, _REG_CONFIG, b"\x00")
        return Calibration(tp, h)

    def _measure(self):
        i2c = self._i2c
        address = self._address
        clock = self._clock
        if self._humidity:  # ctrl_hum only takes effect with the next ctrl_meas write
            i2c.writeto_mem(address, _REG_CTRL_HUM, bytes((_CTRL_HUM_X1,)))
        i2c.writeto_mem(address, _REG_CTRL_MEAS, bytes((_CTRL_MEAS_FORCED_X1,)))
        start = clock.ticks_ms()
        clock.sleep_ms(_MEASURE_MS)
        while i2c.readfrom_mem(address, _REG_STATUS, 1)[0] & _STATUS_MEASURING:
            if clock.ticks_diff(clock.ticks_ms(), start) > _DEADLINE_MS:
                raise SensorError("%s at 0x%02x: measurement timed out" % (self.kind, address))
            clock.sleep_ms(2)
        d = i2c.readfrom_mem(address, _REG_DATA, 8 if self._humidity else 6)
        adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        adc_h = (d[6] << 8) | d[7] if self._humidity else 0
        if adc_t == _SKIPPED or adc_p == _SKIPPED or (self._humidity and adc_h == 0x8000):
            raise SensorError(
                "%s at 0x%02x: no measurement in the data registers" % (self.kind, address)
            )
        return adc_p, adc_t, adc_h


def _u16(b, i):
    return b[i] | (b[i + 1] << 8)


def _s16(b, i):
    v = b[i] | (b[i + 1] << 8)
    return v - 65536 if v & 0x8000 else v


def _s8(v):
    return v - 256 if v & 0x80 else v


def _cdiv(a, b):
    """Integer division truncating toward zero, as C does (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q
