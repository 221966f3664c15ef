"""The firmware itself: firmware/main.py only calls main() here, so it ships as .mpy.

Compiling a long main.py on the board costs tens of KB of heap at every boot; this module is
loaded as bytecode instead. Everything that is needed only once (config checks, building the
transport, the board and the outbox) lives in kpnthings.wiring and is unloaded before the loop
starts; the loop itself is kpnthings.device's, the uplink it keeps kpnthings.uplink's, and the
clock's NTP schedule kpnthings.clock's.
"""

import sys


def log(line):
    print(line)


def main():
    """Boot from config.json (see kpnthings.wiring), then run the device loop."""
    from kpnthings import unload, wiring

    try:
        device, transport = wiring.boot(log)
    except wiring.BootFailed:
        sys.exit(1)
    finally:
        # and collect, before the loop's objects. This frame's own name for the module goes
        # too: it would keep wiring, all its code, alive through the whole loop (4 KB at rest).
        del wiring
        unload("wiring", "config", "downlink_spec", "mqtt_config")
    device.prepare()
    cfg = device.config
    try:
        device.run(cycles=cfg["cycles"], interval_s=cfg["interval_s"])
    finally:
        close = getattr(transport, "close", None)
        if close is not None:
            close()
    log("[boot] done after %d cycles" % device.cycles_done)
