"""A plain digital input (door contact, presence detector), reported as a SenML boolean (vb)."""


class Sensor:
    label = "sensor"  # build() sets "sensors[<index>] (<type>)" for error messages

    def __init__(self, entry, ctx):
        machine = ctx.machine
        Pin = machine.Pin
        self.names = entry["names"]
        self.last_error = None
        self._invert = entry["invert"]
        pull = {"up": Pin.PULL_UP, "down": Pin.PULL_DOWN}.get(entry["pull"])
        if pull is None:
            self._pin = Pin(entry["pin"], Pin.IN)
        else:
            self._pin = Pin(entry["pin"], Pin.IN, pull)

    def read(self):
        return [(self.names[0], bool(self._pin.value()) != self._invert, None)]
