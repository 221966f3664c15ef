"""Host stand-in for the firmware's C module ``_onewire``: bus primitives on a simulated pin."""

import simbus


def reset(pin):
    bus = simbus.onewire_bus(pin)
    return bus.reset() if bus is not None else False


def readbit(pin):
    bus = simbus.onewire_bus(pin)
    return bus.readbit() if bus is not None else 1


def readbyte(pin):
    bus = simbus.onewire_bus(pin)
    return bus.readbyte() if bus is not None else 0xFF


def writebit(pin, value):
    bus = simbus.onewire_bus(pin)
    if bus is not None:
        bus.writebit(value)


def writebyte(pin, value):
    bus = simbus.onewire_bus(pin)
    if bus is not None:
        bus.writebyte(value)


def crc8(data):
    return simbus.crc8(data)
