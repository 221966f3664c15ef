"""A pulse counter (water, gas or energy meter output), in hardware where the board has one.

Reports the pulses counted since boot as SenML ``v``; KPN Things or the application turns the
cumulative count into a rate, and a reboot shows as the count falling back to zero. An optional
``debounce_ms`` ignores edges that follow an accepted one too closely (reed contacts bounce).

Edges must be counted while the VM is busy elsewhere: DNS, a TLS handshake or a flash erase
hold it for seconds, and a soft pin interrupt only queues its handler (8 places on ESP32, shared
by every soft callback), so the edges beyond that are lost (issue 17, finding 8). So, best first:
- ESP32 firmware with ``esp32.PCNT`` (MicroPython 1.26+), ``debounce_ms`` 0: a hardware pulse
  counter unit counts; no interrupt at all. Its 12.8 us filter is far too short to debounce a
  reed contact, so a debounced counter takes the next way.
- a hard pin interrupt where the port accepts ``hard=True`` (rp2): the handler runs at the edge
  whatever the VM does. It compares two tick values and adds one, allocating nothing, as a hard
  handler must.
- else (ESP32 before 1.26, or debounced) a soft one, with the loss above.
docs/sensors.md gives the edges each way can still miss.
"""

from kpnthings.sensors import Driver


class Sensor(Driver):
    def __init__(self, entry, ctx):
        super().__init__(entry)
        machine = ctx.machine
        Pin = machine.Pin
        self.count = 0
        self._debounce = entry["debounce_ms"]
        self._ticks_ms = ctx.clock.ticks_ms
        self._ticks_diff = ctx.clock.ticks_diff
        self._last = None  # ticks of the last edge counted; the unit's last value with a unit
        from kpnthings.sensors import input_pin

        pin = input_pin(machine, entry["pin"], entry["pull"])
        edge = entry["edge"]
        self._unit = None if self._debounce else _pulse_counter(ctx, pin, edge)
        if self._unit is not None:
            self._last = 0
            return
        if edge == "rising":
            trigger = Pin.IRQ_RISING
        elif edge == "falling":
            trigger = Pin.IRQ_FALLING
        else:
            trigger = Pin.IRQ_RISING | Pin.IRQ_FALLING
        # A bound method made once here, so the interrupt itself allocates nothing.
        handler = self._on_edge if self._debounce else self._on_edge_plain
        try:
            pin.irq(handler=handler, trigger=trigger, hard=True)
        except TypeError:  # ESP32: Pin.irq has no `hard`, its handlers are always scheduled
            pin.irq(handler=handler, trigger=trigger)

    def _on_edge_plain(self, pin):
        self.count += 1

    def _on_edge(self, pin):
        now = self._ticks_ms()
        if self._last is None or self._ticks_diff(now, self._last) >= self._debounce:
            self._last = now
            self.count += 1

    def read(self):
        unit = self._unit
        if unit is not None:
            # The unit starts again at 0 when it reaches 32000 (it never goes negative): the
            # edges since the last read are the difference modulo 32000, exact below 32000.
            now = unit.value()
            self.count += (now - self._last) % 32000
            self._last = now
        return [(self.names[0], self.count, None)]


def _pulse_counter(ctx, pin, edge):
    """A started esp32.PCNT unit counting `edge`s of `pin`, or None where there is none (not an
    ESP32, firmware before 1.26, or every unit taken: an ESP32 has 8, an S2 or S3 4)."""
    try:
        import esp32
    except ImportError:
        return None
    PCNT = getattr(esp32, "PCNT", None)
    if PCNT is None:
        return None
    taken = ctx.shared("pcnt", list)  # the units this build gave out, numbered from 0
    up = PCNT.INCREMENT
    try:
        # min/max as machine.Counter sets them (ports/esp32/modules/machine.py); both IDF
        # drivers accept them. filter: 1023 ticks of 80 MHz, the longest there is.
        unit = PCNT(
            len(taken),
            pin=pin,
            rising=PCNT.IGNORE if edge == "falling" else up,
            falling=PCNT.IGNORE if edge == "rising" else up,
            filter=1023,
            min=-32000,
            max=32000,
        )
    except (ValueError, OSError):  # no such unit on this chip
        return None
    taken.append(unit)
    unit.start()
    return unit
