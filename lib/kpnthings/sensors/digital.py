"""A plain digital input (door contact, presence detector), reported as a SenML boolean (vb)."""

from kpnthings.sensors import Driver


class Sensor(Driver):
    def __init__(self, entry, ctx):
        super().__init__(entry)
        machine = ctx.machine
        self._invert = entry["invert"]
        from kpnthings.sensors import input_pin

        self._pin = input_pin(machine, entry["pin"], entry["pull"])

    def read(self):
        return [(self.names[0], bool(self._pin.value()) != self._invert, None)]
