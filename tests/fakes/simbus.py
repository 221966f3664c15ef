"""Simulated sensors at the level of the pin and the bus, so the real drivers run on the host.

A ``World`` holds what is wired to which pin: pin levels, ADC voltages, DHT sensors, one-wire
buses with DS18B20s, I2C buses with BME280s, and a simulated millisecond clock. ``world.machine()``
returns a stand-in for the ``machine`` module (Pin, ADC, I2C, SoftI2C) bound to that world;
the fake firmware modules next to this file (``dht``, ``onewire``, ``_onewire``, ``ds18x20``)
reach the world through the pin objects they are given. Runs on CPython and MicroPython.
"""

ETIMEDOUT = 110
ENODEV = 19
# MicroPython's scheduler queue (MICROPY_SCHEDULER_DEPTH on ESP32): soft interrupt handlers wait
# here while the VM is in a long C call, and an edge that finds it full is dropped.
SCHEDULE_DEPTH = 8


class SimClock:
    """Milliseconds that only move when someone sleeps or the test advances them."""

    def __init__(self, start=1000):
        self.now = start

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, b):
        return a + b

    def sleep_ms(self, ms):
        self.now += ms

    def advance(self, ms):
        self.now += ms


class _Namespace:
    pass


class World:
    def __init__(self, clock=None):
        self.clock = clock or SimClock()
        self.levels = {}  # pin id -> 0/1 driven by the outside world
        self.adc = {}  # pin id -> raw 16-bit reading
        self.dht = {}  # pin id -> SimDHT
        self.onewire = {}  # pin id -> SimOneWireBus
        self.i2c = {}  # (sda id, scl id) -> SimI2CBus
        self.pins = {}  # pin id -> the last SimPin made for it (for interrupts)
        self.adc_reads = 0
        self.meters = {}  # pin id -> [ms per pulse, ticks of the last pulse]: see add_meter
        # The port: rp2 accepts Pin.irq(hard=True); esp32() makes an ESP32 of this world, whose
        # Pin.irq has no `hard` and whose firmware may have a hardware pulse counter (PCNT).
        self.hard_irq = True
        self.pcnt_units = {}  # PCNT unit id -> the SimPCNT counting with it
        # While stalled (DNS, a TLS handshake, a flash erase) the VM runs no Python: soft
        # handlers queue in `scheduled` (at most SCHEDULE_DEPTH) and the rest are `dropped`.
        self.stalled = False
        self.scheduled = []
        self.dropped = 0

    # --- wiring ---------------------------------------------------------------------------

    def add_dht(self, pin, sensor):
        self.dht[pin] = sensor
        return sensor

    def add_ds18b20(self, pin, sensor):
        bus = self.onewire.get(pin)
        if bus is None:
            bus = self.onewire[pin] = SimOneWireBus(self.clock)
        bus.devices.append(sensor)
        return sensor

    def add_i2c(self, sda, scl, device):
        bus = self.i2c.get((sda, scl))
        if bus is None:
            bus = self.i2c[(sda, scl)] = SimI2CBus()
        device.clock = self.clock
        bus.devices[device.address] = device
        return device

    def add_meter(self, pin, period_ms):
        """A meter pulsing ``pin`` every ``period_ms`` of the world's clock, on its own: the
        pulses due are delivered whenever the drivers next touch the simulated hardware."""
        self.meters[pin] = [period_ms, self.clock.ticks_ms()]

    def tick(self):
        now = self.clock.ticks_ms()
        for pin in sorted(self.meters):
            period, last = self.meters[pin]
            due = self.clock.ticks_diff(now, last) // period
            if due > 0:
                self.meters[pin][1] = self.clock.ticks_add(last, due * period)
                for _ in range(due):
                    self.set_level(pin, 0)
                    self.set_level(pin, 1)

    def set_level(self, pin, level):
        """Drive an input pin from outside; fires its interrupt on a matching edge (now if hard
        or the VM is running, else queued: see stall) and counts it in a PCNT unit on the pin."""
        old = self._level(pin)
        self.levels[pin] = 1 if level else 0
        if old == self.levels[pin]:
            return
        for unit in self.pcnt_units.values():
            if unit.pin_id == pin:
                unit.edge(self.levels[pin])
        p = self.pins.get(pin)
        if p is None or p.handler is None:
            return
        edge = SimPin.IRQ_RISING if self.levels[pin] else SimPin.IRQ_FALLING
        if not p.trigger & edge:
            return
        if p.hard:
            _hard_call(p.handler, p)
        elif not self.stalled:
            p.handler(p)
        elif len(self.scheduled) < SCHEDULE_DEPTH:
            self.scheduled.append(p)
        else:
            self.dropped += 1

    def stall(self):
        """The VM enters a long C call: from now on soft interrupt handlers only queue."""
        self.stalled = True

    def resume(self):
        """The VM runs Python again: the queued soft handlers run, oldest first, now."""
        self.stalled = False
        queued = self.scheduled
        self.scheduled = []
        for p in queued:
            p.handler(p)

    def pulse(self, pin, count=1, width_ms=50, gap_ms=50, bounce=0):
        """Pulses that pull an idle-high line low, as a meter's open-collector output does.
        ``bounce`` adds that many extra edge pairs 1 ms apart at each falling edge."""
        for _ in range(count):
            self.set_level(pin, 0)
            for _ in range(bounce):
                self.clock.advance(1)
                self.set_level(pin, 1)
                self.clock.advance(1)
                self.set_level(pin, 0)
            self.clock.advance(width_ms)
            self.set_level(pin, 1)
            self.clock.advance(gap_ms)

    def _level(self, pin):
        if pin in self.levels:
            return self.levels[pin]
        p = self.pins.get(pin)
        if p is not None and p.pull == SimPin.PULL_UP:
            return 1
        return 0

    # --- the machine module stand-in --------------------------------------------------------

    def machine(self):
        world = self

        class Pin(SimPin):
            _world = world

        class ADC(SimADC):
            _world = world

        class I2C(SimI2C):
            _world = world

        class SoftI2C(SimI2C):
            _world = world

        m = _Namespace()
        m.Pin = Pin
        m.ADC = ADC
        m.I2C = I2C
        m.SoftI2C = SoftI2C
        return m

    def esp32(self, pcnt=True, units=8):
        """Make this world an ESP32 (Pin.irq refuses `hard`) and return a stand-in for its
        `esp32` module: with PCNT (MicroPython 1.26+, `units` pulse counter units) or without
        (older firmware). Tests put it in sys.modules["esp32"] while the drivers are built."""
        self.hard_irq = False
        world = self

        class PCNT(SimPCNT):
            _world = world
            _units = units

        m = _Namespace()
        if pcnt:
            m.PCNT = PCNT
        return m


class SimPin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    _world = None

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.handler = None
        self.trigger = 0
        self.hard = False
        self._world.pins[id] = self
        if value is not None:
            self._world.levels[id] = 1 if value else 0

    def init(self, mode=-1, pull=-1, value=None):
        if mode != -1:
            self.mode = mode
        if pull != -1:
            self.pull = pull

    def value(self, v=None):
        if v is None:
            return self._world._level(self.id)
        self._world.levels[self.id] = 1 if v else 0
        return None

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=None):
        if hard is not None and not self._world.hard_irq:
            # ESP32's Pin.irq takes handler, trigger and wake only
            raise TypeError("unexpected keyword argument 'hard'")
        self.handler = handler
        self.trigger = trigger
        self.hard = bool(hard)


def _hard_call(handler, pin):
    """Run a hard interrupt handler as the port does: at the edge, with the heap locked on
    MicroPython, so a handler that allocates fails here as it would on the board."""
    try:
        import micropython

        lock = micropython.heap_lock
        unlock = micropython.heap_unlock
    except (ImportError, AttributeError):  # CPython
        handler(pin)
        return
    lock()
    try:
        handler(pin)
    finally:
        unlock()


class SimPCNT:
    """esp32.PCNT as MicroPython 1.26+ documents it (docs/library/esp32.rst): one singleton per
    unit id, configured by keyword; counts the pin's edges in hardware whatever the VM does,
    and starts again at 0 when the count reaches `max` (it does not wrap to `min`)."""

    IGNORE = 0
    INCREMENT = 1
    DECREMENT = 2
    _world = None
    _units = 8

    def __init__(self, id, **kw):
        if not 0 <= id < self._units:
            raise ValueError("invalid id")
        self.id = id
        self.pin_id = kw["pin"].id
        self.rising = kw.get("rising", self.IGNORE)
        self.falling = kw.get("falling", self.IGNORE)
        self.filter = kw.get("filter", 0)
        self.max = kw.get("max", 32767)
        self.min = kw.get("min", -32768)
        self.count = 0
        self.running = False
        self._world.pcnt_units[id] = self  # a unit taken again stops counting for its old user

    def start(self):
        self.running = True

    def value(self, reset=None):
        v = self.count
        if reset == 0:
            self.count = 0
        return v

    def edge(self, level):
        if not self.running or self._world.pcnt_units.get(self.id) is not self:
            return
        action = self.rising if level else self.falling
        if action == self.INCREMENT:
            self.count += 1
            if self.count >= self.max:
                self.count = 0
        elif action == self.DECREMENT:
            self.count -= 1
            if self.count <= self.min:
                self.count = 0


class SimADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    _world = None

    def __init__(self, pin):
        self.id = pin.id if hasattr(pin, "id") else pin
        self.attenuation = None

    def atten(self, value):
        self.attenuation = value

    def read_u16(self):
        self._world.tick()
        self._world.adc_reads += 1
        return self._world.adc.get(self.id, 0)


# --- DHT --------------------------------------------------------------------------------------


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


# --- one-wire ---------------------------------------------------------------------------------


def crc8(data):
    """Dallas/Maxim CRC-8 (x^8 + x^5 + x^4 + 1, reflected); 0 over data that ends in its CRC."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


class SimDS18B20:
    """A DS18B20: 64-bit ROM, 9-byte scratchpad, 750 ms conversions on the world's clock.
    Its scratchpad holds the power-on 85 Cel until a conversion completes.
    ``fail`` = "absent" (no presence pulse) or "crc" (a bit flips on the way)."""

    FAMILY = 0x28
    CONVERSION_MS = 750

    def __init__(self, serial=1, temperature=21.0):
        rom = [self.FAMILY] + [(serial >> (8 * i)) & 0xFF for i in range(6)]
        self.rom = bytes(rom + [crc8(rom)])
        self.temperature = temperature
        self.converted = 85.0  # power-on scratchpad value
        self.conversion_started = None
        self.fail = None
        self.conversions = 0

    def power_cycle(self):
        """Lose power: the scratchpad is back to 85 Cel and a running conversion is lost."""
        self.converted = 85.0
        self.conversion_started = None

    def _settle(self, now):
        """A conversion that has had its 750 ms lands in the scratchpad."""
        started = self.conversion_started
        if started is not None and now - started >= self.CONVERSION_MS:
            self.converted = self.temperature
            self.conversion_started = None

    def start_conversion(self, now):
        # A finished conversion stays in the scratchpad until the next one ends.
        self._settle(now)
        self.conversion_started = now
        self.conversions += 1

    def scratchpad(self, now):
        self._settle(now)
        raw = round(self.converted * 16) & 0xFFFF
        pad = [raw & 0xFF, raw >> 8, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10]
        pad.append(crc8(pad))
        if self.fail == "crc":
            pad[0] ^= 0x01
        return pad


class SimOneWireBus:
    """The bus state machine: reset, ROM command (SKIP, MATCH, SEARCH), function command."""

    SEARCH_ROM = 0xF0
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC
    CONVERT_T = 0x44
    READ_SCRATCH = 0xBE
    WRITE_SCRATCH = 0x4E

    def __init__(self, clock):
        self.clock = clock
        self.devices = []
        self._state = "idle"

    def _present(self):
        return [d for d in self.devices if d.fail != "absent"]

    def reset(self):
        present = self._present()
        self._state = "rom"
        self._selected = present
        self._match = []
        self._out = []
        self._search_bit = 0
        self._search_phase = 0
        return bool(present)

    def writebyte(self, value):
        state = self._state
        if state == "rom":
            if value == self.SKIP_ROM:
                self._state = "function"
            elif value == self.MATCH_ROM:
                self._state = "match"
            elif value == self.SEARCH_ROM:
                self._state = "search"
            else:
                self._state = "idle"
        elif state == "match":
            self._match.append(value)
            if len(self._match) == 8:
                rom = bytes(self._match)
                self._selected = [d for d in self._selected if d.rom == rom]
                self._state = "function"
        elif state == "function":
            if value == self.CONVERT_T:
                for d in self._selected:
                    d.start_conversion(self.clock.ticks_ms())
                self._state = "idle"
            elif value == self.READ_SCRATCH:
                pads = [d.scratchpad(self.clock.ticks_ms()) for d in self._selected]
                # Open-drain wired-AND: several talkers at once garble each other.
                out = [0xFF] * 9
                for pad in pads:
                    out = [out[i] & pad[i] for i in range(9)]
                self._out = out
                self._state = "read"
            elif value == self.WRITE_SCRATCH:
                self._state = "idle"
        # writes in other states go nowhere

    def readbyte(self):
        if self._state == "read" and self._out:
            return self._out.pop(0)
        return 0xFF  # the pull-up: nobody drives the line

    def readbit(self):
        if self._state != "search":
            return 1
        bit = self._search_bit
        active = self._selected
        if self._search_phase == 0:  # every device sends its ROM bit: wired-AND
            self._search_phase = 1
            return min([_rom_bit(d.rom, bit) for d in active] or [1])
        if self._search_phase == 1:  # then its complement
            self._search_phase = 2
            return min([1 - _rom_bit(d.rom, bit) for d in active] or [1])
        return 1

    def writebit(self, value):
        if self._state != "search" or self._search_phase != 2:
            return
        self._selected = [d for d in self._selected if _rom_bit(d.rom, self._search_bit) == value]
        self._search_bit += 1
        self._search_phase = 0
        if self._search_bit == 64:
            self._state = "function"


def _rom_bit(rom, n):
    return (rom[n >> 3] >> (n & 7)) & 1


def onewire_bus(pin):
    """The simulated bus wired to a pin, or None: ``_onewire`` uses this."""
    world = getattr(pin, "_world", None)
    if world is None:  # a plain machine.Pin: nothing simulated is wired to it
        return None
    world.tick()
    return world.onewire.get(pin.id)


# --- I2C --------------------------------------------------------------------------------------


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


# --- a ready-made world for a config ----------------------------------------------------------


def world_for(entries, clock=None):
    """A world with a plausible simulated device behind every entry of a sensors list, for
    running the firmware on the unix board (``make demo``)."""
    world = World(clock)
    serial = 0x1000
    for entry in entries:
        kind = entry.get("type")
        if kind in ("dht22", "dht11"):
            world.add_dht(entry["pin"], SimDHT(kind, 22 if kind == "dht11" else 21.3, 48.0))
        elif kind == "ds18b20":
            serial += 1
            device = SimDS18B20(serial, 19.5)
            rom = entry.get("rom")
            if rom:
                text = rom.lower().replace(":", "").replace("-", "")
                device.rom = bytes([int(text[i : i + 2], 16) for i in range(0, 16, 2)])
            world.add_ds18b20(entry["pin"], device)
        elif kind in ("bme280", "bmp280"):
            bus = entry["i2c"]
            address = entry.get("address", 0x76)
            if isinstance(address, str):
                address = int(address, 16) if address[:2].lower() == "0x" else int(address)
            chip = 0x60 if kind == "bme280" else 0x58
            world.add_i2c(bus["sda"], bus["scl"], SimBME280(address, chip))
        elif kind == "analog":
            world.adc[entry["pin"]] = 0x9A00  # about 60 % of full scale
        elif kind == "digital":
            world.levels[entry["pin"]] = 1
        elif kind == "counter":
            world.add_meter(entry["pin"], 700)  # a busy water meter
    return world
