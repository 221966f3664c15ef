"""A plain digital input (door contact, presence detector), reported as a SenML boolean (vb)."""


class Sensor:
    label = "sensor"  # build() sets "sensors[<index>] (<type>)" for error messages

    def __init__(self, entry, ctx):
        machine = ctx.machine
        self.names = entry["names"]
        self.last_error = None
        self._invert = entry["invert"]
        from kpnthings.sensors import input_pin

        self._pin = input_pin(machine, entry["pin"], entry["pull"])

    def read(self):
        return [(self.names[0], bool(self._pin.value()) != self._invert, None)]
