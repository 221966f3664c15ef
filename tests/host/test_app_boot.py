"""The firmware on the unix port gives the boot-only modules' heap back before its loop starts.

kpnthings.app builds everything through kpnthings.wiring and kpnthings.config, then drops both:
this runs the real firmware against the emulator, with Device.run wrapped so that it reports
what is still loaded when the loop begins.
"""

import json
import subprocess

from kpnthings_tools import demo, emulator, provision

PROBE = """
import gc, sys
from kpnthings import app, device

run = device.Device.run


def probed(self, *a, **k):
    gc.collect()
    print("PROBE", sorted(m for m in sys.modules if m.startswith("kpnthings")))
    return run(self, *a, **k)


device.Device.run = probed
app.main()
"""


def test_config_and_wiring_are_unloaded_before_the_loop(tmp_path):
    ident = provision.new_identity()
    emu = emulator.Emulator(":memory:", [(ident.dvnuuid, ident.secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        cfg = {
            "dvnuuid": ident.dvnuuid,
            "secret": ident.secret,
            "url": server.url,
            "board": "unix",
            "interval_s": 1,
            "cycles": 1,
        }
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg))
        script = tmp_path / "probe_main.py"
        script.write_text(PROBE)
        proc = subprocess.run(
            [demo.micropython_binary(), str(script)],
            cwd=str(tmp_path),
            env=demo.firmware_env(path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        sent = emu.messages(ident.dvnuuid)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    probe = [line for line in proc.stdout.splitlines() if line.startswith("PROBE")]
    assert len(probe) == 1, proc.stdout
    loaded = probe[0].split("[", 1)[1].split("]", 1)[0]
    assert "kpnthings.app" in loaded and "kpnthings.device" in loaded
    assert "kpnthings.config" not in loaded
    assert "kpnthings.wiring" not in loaded
    assert "[kpn] uplink 1:" in proc.stdout
    assert sent
