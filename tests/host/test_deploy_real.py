"""`kpnthings deploy` for real: mpremote into the MicroPython unix port standing in for a board
(socat bridge, PROTOCOL.md; the board_standin fixture is in conftest.py), after which the firmware
starts from the folder the files landed in, and a new identity deployed over a board sends the
old one's readings under it."""

import json
import os
import subprocess

from _deploy_support import MICROPYTHON, ROOT, _cli, _expected_dests, _free_port, _write_config

from kpnthings_tools import emulator, provision

# -- for real: mpremote into the unix port over socat ------------------------------------------


def test_deploy_for_real_into_the_unix_port(tmp_path, board_standin):
    folder, port = board_standin
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, "unix", url="http://127.0.0.1:9")
    args = (
        "deploy",
        "--board",
        "unix",
        "--port",
        port,
        "--resume",
        "--config",
        str(cfg),
        "--build-dir",
        str(tmp_path / "b"),
    )
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert config["secret"] not in proc.stdout + proc.stderr
    # --romfs auto asked the board first; the unix port has no ROMFS: .mpy files.
    assert "romfs query" in proc.stdout
    assert "board: ROMFS is not enabled on this device -> copying .mpy files" in proc.stdout
    assert "romfs deploy" not in proc.stdout.split("copying .mpy files", 1)[1]
    # Every file landed, byte for byte, from the build folder this very deploy wrote, and no
    # library module outside the config's set.
    sources = {
        "boot.py": ROOT / "firmware" / "boot.py",
        "main.py": ROOT / "firmware" / "main.py",
        "config.json": cfg,
    }
    expected = _expected_dests("unix", config, with_ca=False)
    for dest in expected:
        src = sources.get(dest, tmp_path / "b" / dest)
        assert (folder / dest).read_bytes() == src.read_bytes(), dest
    on_board = sorted(p.relative_to(folder).as_posix() for p in (folder / "lib").rglob("*.mpy"))
    assert on_board == sorted(d for d in expected if d.startswith("lib/"))

    # A second deploy removes what an earlier install left in the folders deploy owns (a stale
    # client.py would shadow client.mpy; a driver folder an earlier config needed takes flash)
    # and keeps everything else.
    (folder / "lib" / "kpnthings" / "client.py").write_text("raise ImportError('stale')\n")
    (folder / "lib" / "kpnthings" / "sensors").mkdir()
    (folder / "lib" / "kpnthings" / "sensors" / "dht.mpy").write_bytes(b"M")
    (folder / "lib" / "boards" / "esp32.mpy").write_bytes(b"M")
    (folder / "lib" / "other.py").write_text("KEEP = 1\n")
    (folder / "data.txt").write_text("user data\n")
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "removed stale lib/kpnthings/client.py" in proc.stdout
    assert "removed stale lib/kpnthings/sensors" in proc.stdout
    assert not (folder / "lib" / "kpnthings" / "client.py").exists()
    assert not (folder / "lib" / "kpnthings" / "sensors").exists()
    assert not (folder / "lib" / "boards" / "esp32.mpy").exists()
    assert (folder / "lib" / "other.py").exists() and (folder / "data.txt").exists()
    assert (folder / "config.json").read_bytes() == cfg.read_bytes()


def test_deploy_to_a_port_with_no_board_fails_clearly(tmp_path):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "unix", url="http://127.0.0.1:9")
    port = _free_port()  # nothing listens there
    proc = _cli(
        "deploy",
        "--board",
        "unix",
        "--port",
        "socket://127.0.0.1:%d" % port,
        "--resume",
        "--config",
        str(cfg),
        "--build-dir",
        str(tmp_path / "b"),
        "--timeout",
        "60",
    )
    assert proc.returncode == 2
    assert "mpremote failed" in proc.stderr


def test_firmware_starts_from_the_deployed_files(tmp_path, board_standin):
    """After a deploy, the folder alone (plus the host's fake machine/network) runs the firmware:
    boot from :main.py, import the .mpy library from :lib, read :config.json, send to KPN."""
    from kpnthings_tools import emulator

    folder, port = board_standin
    ident = provision.new_identity("bench-1")
    emu = emulator.Emulator(":memory:", [(ident.dvnuuid, ident.secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        config = provision.build_config(ident, url=server.url, board="unix", interval_s=1, cycles=2)
        cfg = tmp_path / "device.json"
        cfg.write_text(json.dumps(config))
        proc = _cli(
            "deploy",
            "--board",
            "unix",
            "--port",
            port,
            "--resume",
            "--config",
            str(cfg),
            "--build-dir",
            str(tmp_path / "b"),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # Only the fakes come from the repo; every kpnthings module comes from the board folder.
        env = {k: v for k, v in os.environ.items() if k != "KPN_CONFIG"}
        env["MICROPYPATH"] = "%s:%s:.frozen" % (ROOT / "tests" / "fakes", folder / "lib")
        run = subprocess.run(
            [MICROPYTHON, "main.py"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "[boot] kpnthings" in run.stdout and ident.dvnuuid in run.stdout
        assert ident.secret not in run.stdout + run.stderr
        messages = emu.messages(ident.dvnuuid)
        assert len(messages) == 2
        assert [m["outcome"] for m in messages] == ["accepted", "accepted"]
    finally:
        server.shutdown()


def test_a_new_identity_deployed_over_a_board_sends_the_old_ones_readings_under_it(
    tmp_path, board_standin
):
    """Issue 19: a board that queued readings as device A (KPN out of reach) is re-provisioned
    over its own config (`new-device --force --previous`) and deployed again as device B: the
    module that sends them goes to the board with that config only, and at the next boot A's
    readings go out under A, B's under B."""
    from kpnthings.outbox import Outbox

    folder, port = board_standin
    cfg = tmp_path / "device.json"
    dead = "http://127.0.0.1:%d" % _free_port()
    new_device = ("new-device", "--board", "unix", "--interval", "1", "--cycles", "2")
    proc = _cli(*new_device, "--url", dead, "--config-out", str(cfg))
    assert proc.returncode == 0, proc.stderr
    old = json.loads(cfg.read_text())
    deploy_args = ("deploy", "--board", "unix", "--port", port, "--resume", "--config", str(cfg))
    deploy_args += ("--build-dir", str(tmp_path / "b"))
    proc = _cli(*deploy_args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    handover = folder / "lib" / "kpnthings" / "outbox_handover.mpy"
    assert not handover.exists()  # nothing in this config needs it
    env = {k: v for k, v in os.environ.items() if k != "KPN_CONFIG"}
    env["MICROPYPATH"] = "%s:%s:.frozen" % (ROOT / "tests" / "fakes", folder / "lib")
    run = subprocess.run(
        [MICROPYTHON, "main.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    queued = Outbox(str(folder / "outbox")).peek(100)
    assert len(queued) == 6, run.stdout  # 2 cycles of 3 readings, none sent

    emu = emulator.Emulator(":memory:", [(old["dvnuuid"], old["secret"])], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        again = (*new_device, "--url", server.url, "--config-out", str(cfg), "--force")
        proc = _cli(*again, "--previous", str(cfg))
        assert proc.returncode == 0, proc.stderr
        new = json.loads(cfg.read_text())
        assert new["previous_identities"] == [{"dvnuuid": old["dvnuuid"], "secret": old["secret"]}]
        emu.add_device(new["dvnuuid"], new["secret"])
        proc = _cli(*deploy_args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert old["secret"] not in proc.stdout + proc.stderr
        assert (
            handover.read_bytes()
            == (tmp_path / "b" / "lib/kpnthings/outbox_handover.mpy").read_bytes()
        )
        run = subprocess.run(
            [MICROPYTHON, "main.py"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        sent_old, sent_new = emu.messages(old["dvnuuid"]), emu.messages(new["dvnuuid"])
    finally:
        server.shutdown()
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert [m["outcome"] for m in sent_old] == ["accepted"], out
    base = "urn:dev:DVNUUID:%s:" % old["dvnuuid"]
    assert [(r["n"], r["v"]) for r in sent_old[0]["records"]] == [
        (base + r["n"], r["v"]) for r in queued
    ]
    assert [m["outcome"] for m in sent_new] == ["accepted", "accepted"], out
    assert "every reading of device %s sent; folder removed" % old["dvnuuid"] in out
    assert not (folder / ("outbox-" + old["dvnuuid"][:8])).exists()
    assert old["secret"] not in out and new["secret"] not in out
