"""A pulse counter (water, gas or energy meter output) on a pin interrupt.

Reports the pulses counted since boot as SenML ``v``; KPN Things or the application turns the
cumulative count into a rate, and a reboot shows as the count falling back to zero. An optional
``debounce_ms`` ignores edges that follow an accepted one too closely (reed contacts bounce).
The interrupt handler only compares two tick values and adds one: no allocation, so it is safe
on ports that run pin handlers as hard interrupts.
"""


class Sensor:
    label = "sensor"  # build() sets "sensors[<index>] (<type>)" for error messages

    def __init__(self, entry, ctx):
        machine = ctx.machine
        Pin = machine.Pin
        self.names = entry["names"]
        self.last_error = None
        self.count = 0
        self._debounce = entry["debounce_ms"]
        self._ticks_ms = ctx.clock.ticks_ms
        self._ticks_diff = ctx.clock.ticks_diff
        self._last = None
        from kpnthings.sensors import input_pin

        self._pin = input_pin(machine, entry["pin"], entry["pull"])
        edge = entry["edge"]
        if edge == "rising":
            trigger = Pin.IRQ_RISING
        elif edge == "falling":
            trigger = Pin.IRQ_FALLING
        else:
            trigger = Pin.IRQ_RISING | Pin.IRQ_FALLING
        # A bound method made once here, so the interrupt itself allocates nothing.
        self._handler = self._on_edge if self._debounce else self._on_edge_plain
        self._pin.irq(handler=self._handler, trigger=trigger)

    def _on_edge_plain(self, pin):
        self.count += 1

    def _on_edge(self, pin):
        now = self._ticks_ms()
        if self._last is None or self._ticks_diff(now, self._last) >= self._debounce:
            self._last = now
            self.count += 1

    def read(self):
        return [(self.names[0], self.count, None)]
