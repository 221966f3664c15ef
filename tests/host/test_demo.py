"""`make demo` (python -m kpnthings_tools.demo): it runs, says what happened, and fails loudly."""

import json
import subprocess
import sys

from kpnthings_tools import demo


def test_demo_runs_and_transcript_shows_the_key_events():
    proc = subprocess.run(
        [sys.executable, "-m", "kpnthings_tools.demo", "--cycles", "4"],
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
