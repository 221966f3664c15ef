"""Stand-in for `machine` on the unix port (and CPython): pins that remember their state.

Put tests/fakes first on MICROPYPATH; this file then shadows the unix port's tiny built-in
`machine`. Every output change prints one line such as `[pin] LED -> 1`, so a host run's
transcript shows what a real board would have switched. `states` maps pin id -> last value,
`events` lists (pin id, kind, value) in order, for tests.
"""

import time

states = {}
events = []
# ADC readings by channel/pin id; channel 4 is the RP2040's temperature sensor (about 25 C).
adc_values = {4: 14089}
LOG = True

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
_reset_cause = PWRON_RESET


def _record(pin_id, kind, value):
    changed = states.get(pin_id) != value
    states[pin_id] = value
    events.append((pin_id, kind, value))
    if LOG and changed:
        print("[%s] %s -> %s" % (kind, pin_id, value))


def reset_events():
    """Forget every recorded state and event (tests call this between cases)."""
    states.clear()
    del events[:]


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None, **kw):
        self.id = id
        self._mode = self.IN
        self._value = 0
        self._irq = None
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None, **kw):
        if mode != -1:
            self._mode = mode
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            # A real output pin reads back the level it drives, whichever Pin object set it.
            if self._mode != self.IN:
                return states.get(self.id, self._value)
            return self._value
        self._value = 1 if v else 0
        if self._mode != self.IN:
            _record(self.id, "pin", self._value)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def toggle(self):
        self.value(0 if self._value else 1)

    def irq(self, handler=None, trigger=3, **kw):
        self._irq = handler
        return None

    def __repr__(self):
        return "Pin(%r)" % (self.id,)


class Signal:
    def __init__(self, pin, invert=False):
        self._pin = pin
        self._invert = invert

    def value(self, v=None):
        if v is None:
            return self._pin.value() ^ self._invert
        self._pin.value((1 if v else 0) ^ self._invert)
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class PWM:
    def __init__(self, pin, freq=None, duty_u16=None, **kw):
        self.id = pin.id if isinstance(pin, Pin) else pin
        self._freq = 0
        self._duty = 0
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = int(f)
        return None

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        d = int(d)
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 must be 0..65535")
        self._duty = d
        _record(self.id, "pwm", d)
        return None

    def deinit(self):
        self._duty = 0


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin, **kw):
        self.id = pin.id if isinstance(pin, Pin) else pin

    def read_u16(self):
        return adc_values.get(self.id, 32768)


class WDT:
    feeds = 0

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        WDT.feeds += 1


# RTC memory (machine.RTC().memory()) and what deepsleep() leaves for the next boot (the reset
# cause, with KPN_FAKE_RTC) live in tests/fakes/machine_rtc.py, loaded at the first use and
# named by a string long enough not to be interned: this module adds one name (RTC), so the
# heap the bench subtracts for it stays what it was.
def reset_cause():
    return __import__("machine_rtc").reset_cause(_reset_cause)


def RTC(id=0):
    rtc = __import__("machine_rtc")
    rtc.reset_cause(_reset_cause)  # the file is read before the first write
    return rtc.RTC()


def unique_id():
    return b"\xde\xad\xbe\xef\x00\x01"


def freq(hz=None):
    return 160000000 if hz is None else None


def idle():
    return None


def lightsleep(ms=0):
    time.sleep(ms / 1000)


def deepsleep(ms=0):
    # A real board resets after deep sleep and runs boot.py/main.py again; the host process
    # ends instead, so a test sees the same "nothing after this line runs", and starts the next
    # boot. With KPN_FAKE_RTC the sleep lasts its time (the RTC runs on, as the host's clock
    # does) and the next boot is a wake (tests/fakes/machine_rtc.py).
    print("[machine] deepsleep %d ms" % ms)
    __import__("machine_rtc").sleep(ms)
    raise SystemExit(0)


def reset():
    print("[machine] reset")
    raise SystemExit(0)


def soft_reset():
    raise SystemExit(0)
