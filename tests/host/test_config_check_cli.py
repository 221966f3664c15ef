"""config_check.check_file and `kpnthings check-config`: ok or the field, what new-device writes
passes, a bad config named before the firmware starts, and the ESP32's pin rules (issue 17,
finding 10)."""

import pytest
from _cli_support import run_cli
from _config_support import GOOD, SECRET, WIFI_PW, _write, with_

from kpnthings.config import ConfigError
from kpnthings_tools import config_check

# -- check_file and `kpnthings check-config` -----------------------------------------------------


def test_check_file_checks_pins_against_the_named_board(tmp_path):
    path = _write(tmp_path, with_(sensors=[{"type": "analog", "pin": 25}]))
    with pytest.raises(ConfigError) as info:
        config_check.check_file(path)
    assert "cannot read analog values" in str(info.value)  # esp32: 25 is no ADC1 pin
    path = _write(tmp_path, with_(board="unix", sensors=[{"type": "dht22", "pin": 4}]))
    checked, unknown = config_check.check_file(path)
    assert checked["sensors"][0]["names"] == ["temperature", "humidity"] and unknown == []
    with pytest.raises(ConfigError) as info:
        config_check.check_file(path, board="esp32")
    assert str(info.value) == "board: the config is for unix, not esp32"


def test_check_config_prints_ok_or_the_field(capsys, tmp_path):
    good = _write(tmp_path, with_(intervall_s=5))
    code, out, err = run_cli(capsys, "check-config", str(good))
    assert (code, out) == (0, "ok\n")
    assert "intervall_s" in err  # a warning, not a refusal
    bad = _write(tmp_path, with_(wifi_password="Qx7Wp3z", secret=SECRET[:-1] + "!"), "bad.json")
    code, out, err = run_cli(capsys, "check-config", str(bad))
    assert code == 1 and out == ""
    assert err.startswith("kpnthings: config %s: secret:" % bad) and err.count("\n") == 1
    code, out, err = run_cli(capsys, "check-config", str(good), "--board", "pico_w")
    assert code == 1 and "board:" in err
    code, out, err = run_cli(capsys, "check-config", str(tmp_path / "absent.json"))
    assert code == 1 and "cannot read" in err
    for text in (out, err):
        assert SECRET[:12] not in text and WIFI_PW not in text and "Qx7Wp3z" not in text


def test_demo_and_host_run_name_a_bad_config_before_the_firmware_starts(tmp_path, capfd):
    from kpnthings_tools import demo, emulator, host_run

    typo = {"sensors": [{"type": "dht22", "pin": 4, "pim": 1}]}
    with pytest.raises(demo.DemoError, match='sensors\\[0\\] \\(dht22\\): field "pim"'):
        demo.check_config(demo.demo_config(GOOD["dvnuuid"], SECRET, "http://h", 3, 1, typo))

    emu = emulator.Emulator(":memory:", [(GOOD["dvnuuid"].lower(), SECRET)], log=lambda x: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        # Two sensors named alike: the board would boot it (it trusts the host on names)...
        twice = [{"type": "digital", "pin": 4, "name": "door"}] * 2
        cfg = with_(board="unix", url=server.url, cycles=1, interval_s=1, sensors=twice)
        path = _write(tmp_path, cfg)
        assert host_run.main([str(path)]) == 1
        out = capfd.readouterr().out
        assert out.startswith("config error (%s): sensors[1] (digital): field " % path), out
        assert "uplink" not in out  # the firmware never started
        # ...and does, when asked to skip the host's check.
        assert host_run.main([str(path), "--no-check"]) == 0
        out = capfd.readouterr().out
        assert "config error" not in out and "[kpn] uplink 1:" in out
    finally:
        server.shutdown()
    assert SECRET not in out and WIFI_PW not in out


@pytest.mark.parametrize("board", ["esp32", "pico_w", "unix"])
def test_what_new_device_writes_passes_check_config(capsys, tmp_path, board):
    path = tmp_path / ("%s.json" % board)
    argv = ["new-device", "--board", board, "--config-out", str(path)]
    if board != "unix":
        argv += ["--wifi-ssid", "bench", "--wifi-password", "bench-pw-123", "--ca-file", "ca.der"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert run_cli(capsys, "check-config", str(path), "--board", board) == (0, "ok\n", "")


# -- the ESP32's pin rules (issue 17, finding 10) ------------------------------------------------

# (entry, field, pin, why): each of these passed `kpnthings check-config` before; the board then
# read nothing from the sensor, or stopped booting after its next reset.
ESP32_PIN_MISTAKES = [
    ({"type": "counter", "pin": 36}, "pin", 36, "no pull resistors"),
    ({"type": "digital", "pin": 39, "pull": "up"}, "pin", 39, "no pull resistors"),
    ({"type": "dht22", "pin": 34}, "pin", 34, "input only"),
    ({"type": "ds18b20", "pin": 35}, "pin", 35, "input only"),
    ({"type": "bme280", "i2c": {"sda": 36, "scl": 22}}, "i2c.sda", 36, "input only"),
    ({"type": "digital", "pin": 3}, "pin", 3, "UART0 RX"),
    ({"type": "counter", "pin": 12}, "pin", 12, "1.8 V flash"),
    ({"type": "dht22", "pin": 12}, "pin", 12, "1.8 V flash"),
    ({"type": "digital", "pin": 0, "pull": "down"}, "pin", 0, "bootloader"),
]


@pytest.mark.parametrize(("entry", "field", "pin", "why"), ESP32_PIN_MISTAKES)
def test_check_config_refuses_esp32_pins_that_cannot_work(capsys, tmp_path, entry, field, pin, why):
    path = _write(tmp_path, with_(sensors=[{"type": "dht22", "pin": 4}, entry]))
    code, out, err = run_cli(capsys, "check-config", str(path))
    head = 'kpnthings: config %s: sensors[1] (%s): field "%s": pin %d ' % (
        path,
        entry["type"],
        field,
        pin,
    )
    assert (code, out) == (1, ""), err
    assert err.startswith(head) and why in err and err.count("\n") == 1, err


def test_check_config_refuses_an_actuator_on_uart0(capsys, tmp_path):
    path = _write(tmp_path, with_(actuators={"relay": {"type": "digital", "pin": 1}}))
    code, out, err = run_cli(capsys, "check-config", str(path))
    assert (code, out) == (1, ""), err
    assert "actuators.relay.pin: pin 1 " in err and "UART0 TX" in err, err


def test_check_config_warns_about_the_wrover_psram_pins(capsys, tmp_path):
    # The board file cannot tell a WROOM module (GPIO16/17 free) from a WROVER (its PSRAM):
    # the host says so, and the config still passes.
    sensors = [{"type": "digital", "pin": 16}, {"type": "dht22", "pin": 4}]
    actuators = {"led": {"type": "digital", "pin": 2}, "fan": {"type": "pwm", "pin": 17}}
    path = _write(tmp_path, with_(sensors=sensors, actuators=actuators))
    code, out, err = run_cli(capsys, "check-config", str(path))
    assert (code, out) == (0, "ok\n"), err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(
        'kpnthings: warning: config %s: sensors[0] (digital): field "pin": ' % path
    )
    assert "pin 16 " in lines[0] and "WROVER" in lines[0] and "PSRAM" in lines[0]
    assert lines[1].startswith("kpnthings: warning: config %s: actuators.fan.pin: pin 17 " % path)
    # pico_w and unix have no such rules.
    path = _write(tmp_path, with_(board="unix", sensors=sensors, actuators=actuators), "u.json")
    assert run_cli(capsys, "check-config", str(path)) == (0, "ok\n", "")
