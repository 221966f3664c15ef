"""A simulated one-wire bus with DS18B20s on it, at the level of the bus's bit timing (simbus)."""


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
