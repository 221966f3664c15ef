"""The firmware on the unix port gives the boot-only modules' heap back before its loop starts.

kpnthings.app builds everything through kpnthings.wiring and kpnthings.config, then drops both:
this runs the real firmware against the emulator, with Device.run wrapped so that it reports
what is still loaded when the loop begins.
"""

import json
import socket
import subprocess

from kpnthings.outbox import Outbox
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


# -- a new identity over an old outbox (issue 19, item 1) --------------------------------------


def _dead_url():
    with socket.socket() as s:  # a port nothing listens on: every uplink is refused at once
        s.bind(("127.0.0.1", 0))
        return "http://127.0.0.1:%d" % s.getsockname()[1]


def _firmware(folder, cfg):
    """firmware/main.py on the unix port with `cfg` as folder/config.json (its outbox beside)."""
    path = folder / "config.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.run(
        [demo.micropython_binary(), str(demo.FIRMWARE)],
        cwd=str(folder),
        env=demo.firmware_env(path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[boot] done after" in proc.stdout, proc.stdout
    return proc.stdout


def _config(ident, url, cycles, **more):
    cfg = demo.demo_config(ident.dvnuuid, ident.secret, url, cycles, 1)
    cfg.update(more)
    return cfg


def _resolved(messages):
    """(name, value) of every record KPN got in `messages`, in order."""
    return [(r["n"], r.get("v")) for m in messages for r in m["records"]]


def test_the_readings_of_an_earlier_identity_go_out_under_it_after_a_new_config(tmp_path):
    """A board queues readings as device A while KPN cannot be reached, then gets a new config
    as device B that still holds A (previous_identities): at boot A's readings go out under A,
    signed with A's secret, and B's own under B; the folder moved aside is gone after."""
    old, new = provision.new_identity("old"), provision.new_identity("new")
    _firmware(tmp_path, _config(old, _dead_url(), 3))
    queued = Outbox(str(tmp_path / "outbox")).peek(1000)
    assert len(queued) == 9, queued  # 3 cycles of the unix board's 3 readings
    emu = emulator.Emulator(
        ":memory:", [(old.dvnuuid, old.secret), (new.dvnuuid, new.secret)], log=lambda line: None
    )
    server = emu.serve("127.0.0.1", 0)
    try:
        previous = [{"dvnuuid": old.dvnuuid, "secret": old.secret}]
        out = _firmware(tmp_path, _config(new, server.url, 2, previous_identities=previous))
        sent_old, sent_new = emu.messages(old.dvnuuid), emu.messages(new.dvnuuid)
    finally:
        server.shutdown()
    aside = str(tmp_path / "outbox") + "-" + old.dvnuuid[:8]
    assert [m["outcome"] for m in sent_old] == ["accepted"], out  # A's token, A's base name
    base = "urn:dev:DVNUUID:%s:" % old.dvnuuid
    assert _resolved(sent_old) == [(base + r["n"], r["v"]) for r in queued], out
    assert [m["outcome"] for m in sent_new] == ["accepted"] * 2, out
    assert all(n.startswith("urn:dev:DVNUUID:%s:" % new.dvnuuid) for n, _ in _resolved(sent_new))
    # none of A's readings counted as dropped: B's first health set (docs/health.md) says 0
    assert "droppedReadings" not in out
    dropped = [v for n, v in _resolved(sent_new) if n.endswith(":droppedReadings")]
    assert dropped == [0]
    for line in (
        "[boot] outbox: 9 readings of device %s moved aside to %s, to go out under that identity"
        " (previous_identities)" % (old.dvnuuid, aside),
        "[boot] %s: sending 9 readings under device %s (previous_identities)"
        % (aside, old.dvnuuid),
        "[boot] %s: every reading of device %s sent; folder removed" % (aside, old.dvnuuid),
    ):
        assert line in out, (line, out)
    assert not (tmp_path / ("outbox-" + old.dvnuuid[:8])).exists()
    assert (tmp_path / "outbox" / "owner").read_text() == new.dvnuuid
    assert old.secret not in out and new.secret not in out


def test_without_the_earlier_secret_its_readings_stay_aside_and_are_counted(tmp_path):
    """The new config does not hold A: A's readings never go out (under A or B); B's first
    accepted uplink counts them in droppedReadings, once; the folder stays on the board."""
    old, new = provision.new_identity("old"), provision.new_identity("new")
    _firmware(tmp_path, _config(old, _dead_url(), 2))
    emu = emulator.Emulator(
        ":memory:", [(old.dvnuuid, old.secret), (new.dvnuuid, new.secret)], log=lambda line: None
    )
    server = emu.serve("127.0.0.1", 0)
    try:
        out = _firmware(tmp_path, _config(new, server.url, 2))
        sent_old, sent_new = emu.messages(old.dvnuuid), emu.messages(new.dvnuuid)
    finally:
        server.shutdown()
    aside = tmp_path / ("outbox-" + old.dvnuuid[:8])
    assert sent_old == [], out
    assert (
        "[boot] outbox: 6 readings of device %s moved aside to %s; this device (%s) never sends"
        " them, and counts them in droppedReadings" % (old.dvnuuid, aside, new.dvnuuid)
    ) in out
    dropped = [
        (m["id"], v) for m in sent_new for n, v in _resolved([m]) if n.endswith(":droppedReadings")
    ]
    assert [m["outcome"] for m in sent_new] == ["accepted"] * 2, out
    assert [v for _, v in dropped] == [6] and dropped[0][0] == sent_new[0]["id"], dropped
    assert len(Outbox(str(aside))) == 6  # kept, should the old secret come back
