"""What the deploy tests share: the unix port's binary, a fresh config for a board, where a plan's
files land, the CLI in a subprocess, a plan's refusal, a stand-in for mpremote/ampy and the calls
it logged, and a boot that went clean. The fixtures ca_der and board_standin are in conftest.py."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kpnthings_tools import deploy, modules, provision

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MICROPYTHON = shutil.which("micropython", path=str(VENV_BIN)) or shutil.which("micropython")


def _write_config(path, board, **kw):
    ident = provision.new_identity("bench-1")
    config = provision.build_config(
        ident, board=board, wifi_ssid="" if board == "unix" else "Lab", **kw
    )
    path.write_text(json.dumps(config))
    return config


def _module_dests(config):
    """Where the config's module set lands on the board, worked out by kpnthings_tools.modules."""
    return ["lib/" + rel[: -len(".py")] + ".mpy" for rel, _why in modules.module_set(config)]


def _expected_dests(board, config, with_ca=True):
    dests = _module_dests(config)
    dests += ["lib/boards/__init__.mpy", "lib/boards/%s.mpy" % board]
    if board == "esp32":  # its pin rules, read by the config check at boot
        dests.append("lib/boards/esp32_pins.mpy")
    dests += ["boot.py", "main.py", "config.json"]
    if with_ca:
        dests.append("ca.der")
    return dests


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "kpnthings_tools.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=120,
    )


def _error(tmp_path, board="esp32", **kw):
    kw.setdefault("build_dir", tmp_path / "b")
    with pytest.raises(deploy.DeployError) as info:
        deploy.make_plan(board, **kw)
    return str(info.value)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_tool(tmp_path, body):
    """A stand-in for mpremote/ampy that logs its argv, one JSON line per call."""
    script = tmp_path / "fake_tool.py"
    script.write_text(
        "#!%s\nimport json, sys, time\nlog = %r\n"
        "with open(log, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n%s\n"
        % (sys.executable, str(tmp_path / "calls.log"), body)
    )
    script.chmod(0o755)
    return script


def _calls(tmp_path):
    path = tmp_path / "calls.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_booted_clean(run, cycles):
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "ImportError" not in out and "no module named" not in out.lower(), out
    assert "[boot] done after %d cycles" % cycles in run.stdout, out
