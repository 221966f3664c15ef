"""The pulse counter driver over a simulated pin (tests/fakes/simbus.py): counting, debounce, and
counting on while the VM is stalled, in hardware (ESP32 PCNT), in a hard interrupt (rp2) or in a
soft one."""

import sys

from _sensor_rig import by_name, rig, simbus

from kpnthings import sensors


def test_counter_counts_pulses_cumulatively():
    world, drivers = rig([{"type": "counter", "pin": 15}])
    assert sensors.read_all(drivers)[0] == [("counter", 0, None)]
    world.pulse(15, 3)
    assert sensors.read_all(drivers)[0] == [("counter", 3, None)]
    world.pulse(15, 2)
    assert sensors.read_all(drivers)[0] == [("counter", 5, None)]


def test_counter_debounce_ignores_contact_bounce():
    world, drivers = rig(
        [
            {"type": "counter", "pin": 15, "name": "raw"},
            {"type": "counter", "pin": 16, "name": "clean", "debounce_ms": 20},
        ]
    )
    world.pulse(15, 4, bounce=2)
    world.pulse(16, 4, bounce=2)
    got = by_name(sensors.read_all(drivers)[0])
    assert got["raw"] == (12, None)  # every bounce counted
    assert got["clean"] == (4, None)


def test_counter_fed_by_a_simulated_meter():
    world = simbus.World()
    world.add_meter(15, 700)
    world.adc[34] = 100
    world, drivers = rig([{"type": "analog", "pin": 34}, {"type": "counter", "pin": 15}], world)
    world.clock.advance(2000)
    assert by_name(sensors.read_all(drivers)[0])["counter"] == (2, None)
    world.clock.advance(1500)
    assert by_name(sensors.read_all(drivers)[0])["counter"] == (5, None)


def test_counter_on_both_edges():
    world, drivers = rig([{"type": "counter", "pin": 15, "edge": "both"}])
    world.pulse(15, 2)
    assert sensors.read_all(drivers)[0] == [("counter", 4, None)]


# --- counting while the VM is stalled (issue 17, finding 8) -----------------------------------
#
# A meter at 2.8 pulses/s (10 kW at 1000 imp/kWh) while the VM sits 7 s in DNS (or a TLS
# handshake, or a flash erase): 20 pulses arrive while no Python runs. A soft interrupt only
# queues its handler, MicroPython's queue holds 8 (simbus.SCHEDULE_DEPTH), and the rest are lost.


def _stalled_pulses(world, pin, count=20, bounce=0):
    world.stall()
    world.pulse(pin, count, width_ms=50, gap_ms=307, bounce=bounce)  # 2.8 pulses/s, about 7 s
    world.resume()


def _esp32_rig(entries, world=None, pcnt=True, units=8):
    """Drivers built as on an ESP32, whose `esp32` module (with esp32.PCNT, MicroPython 1.26+,
    or without) is importable while they are built."""
    world = world or simbus.World()
    saved = sys.modules.get("esp32")
    sys.modules["esp32"] = world.esp32(pcnt, units)
    try:
        return rig(entries, world)
    finally:
        if saved is None:
            sys.modules.pop("esp32", None)
        else:
            sys.modules["esp32"] = saved


def test_counter_on_esp32_counts_in_hardware_through_a_stalled_vm():
    world, drivers = _esp32_rig([{"type": "counter", "pin": 15}])
    _stalled_pulses(world, 15)
    assert sensors.read_all(drivers)[0] == [("counter", 20, None)]
    assert world.pins[15].handler is None  # no interrupt at all: the unit counts
    unit = world.pcnt_units[0]
    assert (unit.falling, unit.rising) == (unit.INCREMENT, unit.IGNORE)  # "edge": "falling"
    assert unit.filter == 1023  # 12.8 us: glitches go, a meter's 30 ms pulses stay


def test_counter_on_rp2_counts_in_a_hard_interrupt_through_a_stalled_vm():
    world, drivers = rig([{"type": "counter", "pin": 15}])  # rp2: Pin.irq takes hard=True
    _stalled_pulses(world, 15)
    assert sensors.read_all(drivers)[0] == [("counter", 20, None)]
    assert world.pins[15].hard and world.dropped == 0


def test_counter_hard_interrupt_keeps_its_debounce_through_a_stalled_vm():
    # A soft handler that runs late would see the whole backlog at one instant and take all
    # but the first edge for contact bounce; a hard one runs at each edge.
    world, drivers = rig([{"type": "counter", "pin": 15, "debounce_ms": 20}])
    _stalled_pulses(world, 15, bounce=2)
    assert sensors.read_all(drivers)[0] == [("counter", 20, None)]


def test_counter_hardware_unit_starting_again_at_zero_loses_nothing():
    world, drivers = _esp32_rig([{"type": "counter", "pin": 15}])
    world.pulse(15, 31990, width_ms=1, gap_ms=1)
    assert sensors.read_all(drivers)[0] == [("counter", 31990, None)]
    world.pulse(15, 20, width_ms=1, gap_ms=1)  # the unit reaches 32000 and starts again at 0
    assert world.pcnt_units[0].value() == 10
    assert sensors.read_all(drivers)[0] == [("counter", 32010, None)]
    world.pulse(15, 31999, width_ms=1, gap_ms=1)  # one short of a whole round: still exact
    assert sensors.read_all(drivers)[0] == [("counter", 64009, None)]


def test_counter_hardware_unit_per_counter_then_interrupts():
    # Each counter takes a unit of its own; where the chip has none left (an ESP32-S3 has 4),
    # the next one counts on a pin interrupt instead of failing the boot.
    entries = [
        {"type": "counter", "pin": 15, "edge": "both"},
        {"type": "counter", "pin": 16},
        {"type": "counter", "pin": 17},
    ]
    world, drivers = _esp32_rig(entries, units=2)
    assert sorted(world.pcnt_units) == [0, 1]
    assert world.pins[17].handler is not None and not world.pins[17].hard
    for pin in (15, 16, 17):
        world.pulse(pin, 3)
    got = by_name(sensors.read_all(drivers)[0])
    assert got == {"counter": (6, None), "counter2": (3, None), "counter3": (3, None)}


def test_counter_on_esp32_with_debounce_or_old_firmware_uses_a_soft_interrupt():
    # The hardware filter stops at 12.8 us, far below a reed contact's bounce, so a debounced
    # counter stays on the pin interrupt; so does every counter on firmware before 1.26. ESP32
    # pin interrupts are soft: what a stall brings beyond the scheduler's queue is lost, and
    # docs/sensors.md says so.
    world, drivers = _esp32_rig(
        [{"type": "counter", "pin": 15, "debounce_ms": 20}, {"type": "counter", "pin": 16}],
        pcnt=False,
    )
    world.pulse(15, 4, bounce=2)
    world.pulse(16, 4)
    assert sensors.read_all(drivers)[0] == [("counter", 4, None), ("counter2", 4, None)]
    assert not world.pcnt_units and not world.pins[15].hard and not world.pins[16].hard
    _stalled_pulses(world, 16)
    assert sensors.read_all(drivers)[0][1] == ("counter2", 4 + simbus.SCHEDULE_DEPTH, None)
    assert world.dropped == 20 - simbus.SCHEDULE_DEPTH
    # With PCNT (1.26+) too, a debounced counter keeps its debounce on the interrupt.
    world, drivers = _esp32_rig([{"type": "counter", "pin": 15, "debounce_ms": 20}])
    world.pulse(15, 4, bounce=2)
    assert sensors.read_all(drivers)[0] == [("counter", 4, None)]
    assert not world.pcnt_units and not world.pins[15].hard
