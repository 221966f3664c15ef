"""Board files and the host fakes, run on the MicroPython unix port (and checked on CPython)."""

import itertools
import json
import subprocess
import sys

import pytest

from kpnthings.downlink import validate_spec
from kpnthings_tools import demo, emulator, host_run, provision

BOARDS = ("esp32", "pico_w", "unix")


def mp(code, tmp_path):
    """Run `code` on the unix port with the fakes and the boards package; return stdout."""
    script = tmp_path / "snippet.py"
    script.write_text(code)
    proc = subprocess.run(
        [demo.micropython_binary(), str(script)],
        env=demo.firmware_env(tmp_path / "unused.json"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def boards_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(demo.ROOT))
    for name in BOARDS:
        sys.modules.pop("boards." + name, None)


@pytest.mark.parametrize("name", BOARDS)
def test_default_actuators_fit_the_pin_map(name, boards_on_path):
    board = __import__("boards." + name, fromlist=[name])
    spec = validate_spec(board.ACTUATORS, board.OUTPUT_PINS)
    assert "led" in spec and spec["led"]["type"] == "digital"
    assert board.OUTPUT_PINS <= board.PINS
    assert isinstance(board.HAS_WIFI, bool) and isinstance(board.CLOCK_TRUSTED, bool)


def test_led_pins_match_the_boards(boards_on_path):
    from boards import esp32, pico_w, unix

    assert esp32.ACTUATORS["led"]["pin"] == 2
    assert pico_w.ACTUATORS["led"]["pin"] == "LED"
    assert unix.ACTUATORS["led"]["pin"] == "LED"
    assert 6 not in esp32.PINS and 34 in esp32.PINS and 34 not in esp32.OUTPUT_PINS
    assert 23 not in pico_w.PINS  # belongs to the wireless chip


def test_unix_sensors_are_plausible_and_drift(tmp_path):
    out = mp(
        "import json\nfrom boards import unix\n"
        "print(json.dumps([unix.read_sensors() for _ in range(20)]))\n",
        tmp_path,
    )
    runs = json.loads(out)
    assert [r[0] for r in runs[0]] == ["temperature", "humidity", "batteryVoltage"]
    temps = [r[0][1] for r in runs]
    assert all(15 <= t <= 30 for t in temps)
    assert all(30 <= r[1][1] <= 70 and 3.3 <= r[2][1] <= 4.2 for r in runs)
    assert [r[2] for r in runs[0]] == ["Cel", "%RH", "V"]
    assert len(set(temps)) > 1  # they vary from cycle to cycle
    # Steps of at most 0.3 C, each end rounded to 0.1 C.
    assert max(abs(a - b) for a, b in itertools.pairwise(temps)) <= 0.41


def test_pico_w_temperature_from_adc4(tmp_path):
    # 27 - (V - 0.706) / 0.001721 with V = raw * 3.3 / 65535 (RP2040 datasheet 4.9.5).
    out = mp(
        "import machine\nfrom boards import pico_w\n"
        "print(pico_w.read_sensors())\n"
        "machine.adc_values[4] = 13000\n"
        "print(pico_w.read_sensors())\n",
        tmp_path,
    )
    first, second = out.splitlines()
    assert first == "[('mcuTemperature', 25.0, 'Cel')]"
    assert second == "[('mcuTemperature', 56.9, 'Cel')]"


def test_esp32_temperature_from_the_port_module(tmp_path):
    out = mp(
        "import sys\n"
        "class S3:\n    def mcu_temperature(): return 41.5\n"
        "class Classic:\n    def raw_temperature(): return 122\n"
        "from boards import esp32\n"
        "sys.modules['esp32'] = S3\nprint(esp32.read_sensors())\n"
        "sys.modules['esp32'] = Classic\nprint(esp32.read_sensors())\n",
        tmp_path,
    )
    assert out.splitlines() == [
        "[('mcuTemperature', 41.5, 'Cel')]",
        "[('mcuTemperature', 50.0, 'Cel')]",
    ]


def test_esp32_classic_sensor_invalid_128_is_never_a_reading(tmp_path):
    # Issue 17 #11: the classic ESP32's sensor often answers 128 (53.3 C) whatever the
    # temperature (esphome, ESPEasy and arduino-esp32 #2422 ignore or re-read it).
    out = mp(
        "import sys\n"
        "class Stuck:\n    calls = 0\n"
        "    def raw_temperature():\n        Stuck.calls += 1\n        return 128\n"
        "class Flaky:\n    answers = [128, 128, 131]\n"
        "    def raw_temperature(): return Flaky.answers.pop(0)\n"
        "from boards import esp32\n"
        "sys.modules['esp32'] = Stuck\nprint(esp32.read_sensors(), Stuck.calls)\n"
        "sys.modules['esp32'] = Flaky\nprint(esp32.read_sensors())\n",
        tmp_path,
    )
    assert out.splitlines() == ["[] 3", "[('mcuTemperature', 55.0, 'Cel')]"]


def test_esp32_and_pico_w_blink_the_configured_led_only(tmp_path):
    # Issue 17 #9: GPIO2 carried a sensor and the LED had moved to GPIO4; the board blinked 2.
    out = mp(
        "import machine\nfrom kpnthings import status_led\nfrom boards import esp32, pico_w\n"
        "status_led.ON_MS = status_led.OFF_MS = 0\n"
        "esp32.signal('unauthorized', {'type': 'digital', 'pin': 4, 'active_low': False})\n"
        "print(sorted(set(p for p, k, v in machine.events)))\n"
        "machine.reset_events()\n"
        "esp32.signal('unauthorized', None)\npico_w.signal('unknown device', None)\n"
        "print(machine.events)\n"
        "pico_w.signal('unknown device', {'type': 'digital', 'pin': 'LED', 'active_low': False})\n"
        "print(sorted(set(p for p, k, v in machine.events)))\n",
        tmp_path,
    )
    printed = [x for x in out.splitlines() if not x.startswith("[pin]")]  # the fake logs changes
    assert printed == ["[4]", "[]", "['LED']"]


def test_fake_pins_record_and_log_changes(tmp_path):
    out = mp(
        "import machine\n"
        "p = machine.Pin('LED', machine.Pin.OUT)\n"
        "p.on(); p.on(); p.off(); p.value(1)\n"
        "w = machine.PWM(machine.Pin(5), freq=1000)\n"
        "w.duty_u16(100)\n"
        "print(machine.states, len(machine.events), w.freq())\n",
        tmp_path,
    )
    lines = out.splitlines()
    # Only changes are logged; every write is recorded.
    assert lines[:4] == ["[pin] LED -> 1", "[pin] LED -> 0", "[pin] LED -> 1", "[pwm] 5 -> 100"]
    assert lines[4] in ("{'LED': 1, 5: 100} 5 1000", "{5: 100, 'LED': 1} 5 1000")


def test_fake_wlan_connects_or_fails_on_request(tmp_path):
    out = mp(
        "import network\n"
        "w = network.WLAN(network.STA_IF)\nw.active(True)\n"
        "network.WLAN.connect_polls = 2\n"
        "w.connect('home', 'pw12345678')\n"
        "print([w.isconnected() for _ in range(3)], w.status() == network.STAT_GOT_IP)\n"
        "network.WLAN.fail = True\n"
        "w.connect('home', 'pw12345678')\n"
        "print(w.isconnected(), w.ifconfig()[0])\n",
        tmp_path,
    )
    assert out.splitlines() == [
        "[wifi] connecting to 'home'",
        "[False, False, True] True",
        "[wifi] connecting to 'home'",
        "False 192.168.1.50",
    ]
    assert "pw12345678" not in out


def test_host_run_runs_the_firmware_with_a_config(tmp_path, capfd):
    dvnuuid, secret = provision.new_dvnuuid(), provision.new_secret()
    emu = emulator.Emulator(":memory:", [(dvnuuid, secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        cfg = {"dvnuuid": dvnuuid, "secret": secret, "url": server.url, "board": "unix"}
        cfg.update({"interval_s": 1, "cycles": 1})
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg))
        assert host_run.main([str(path)]) == 0
        assert len(emu.messages(dvnuuid)) == 1
        path.write_text(json.dumps(dict(cfg, interval_s=-1)))
        assert host_run.main([str(path)]) == 1
    finally:
        server.shutdown()
    out = capfd.readouterr().out
    assert "-> 200 accepted" in out and "interval_s:" in out


def test_esp32_pin_rules_fit_its_pin_map(boards_on_path):
    # Issue 17 #10: the rules the config check reads at boot (boards/esp32_pins.py).
    from boards import esp32, esp32_pins

    assert esp32_pins.INPUT_ONLY == esp32.PINS - esp32.OUTPUT_PINS == set(range(34, 40))
    assert esp32_pins.NO_PULL <= esp32.PINS
    assert {1, 3} <= set(esp32_pins.AVOID) and set(range(6, 12)) <= set(esp32_pins.AVOID)
    assert set(esp32_pins.STRAPPING) <= esp32.OUTPUT_PINS
    assert {p for p, _ in esp32_pins.STRAPPING.values()} <= {"up", "down"}
    assert set(esp32_pins.WARN) == {16, 17}
    # The default LED is on none of them, and the board module itself holds none of the texts.
    led = esp32.ACTUATORS["led"]["pin"]
    assert led not in esp32_pins.AVOID and led not in esp32_pins.STRAPPING
    assert not hasattr(esp32, "AVOID") and not hasattr(esp32, "STRAPPING")
