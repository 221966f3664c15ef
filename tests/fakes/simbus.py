"""Simulated sensors at the level of the pin and the bus, so the real drivers run on the host.

A ``World`` holds what is wired to which pin: pin levels, ADC voltages, DHT sensors, one-wire
buses with DS18B20s, I2C buses with BME280s, and a simulated millisecond clock. ``world.machine()``
returns a stand-in for the ``machine`` module (Pin, ADC, I2C, SoftI2C) bound to that world;
the fake firmware modules next to this file (``dht``, ``onewire``, ``_onewire``, ``ds18x20``)
reach the world through the pin objects they are given. Runs on CPython and MicroPython.
"""

from sim_dht import SimDHT, dht_readinto  # noqa: F401  (simbus.X is what the tests name)
from sim_i2c import BOSCH_EXAMPLE_CAL, SimBME280, SimI2C, SimI2CBus  # noqa: F401
from sim_onewire import SimDS18B20, SimOneWireBus, crc8, onewire_bus  # noqa: F401

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
