"""kpnthings_tools.host_run: the firmware it starts never outlives it (issue 19: killing host_run
by its PID left the firmware running, and sending)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kpnthings_tools import emulator, provision

ROOT = Path(__file__).resolve().parents[2]


def _children(pid):
    try:
        text = Path("/proc/%d/task/%d/children" % (pid, pid)).read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _alive(pid):
    try:
        state = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_the_firmware_stops_with_host_run(tmp_path, how):
    dvnuuid, secret = provision.new_dvnuuid(), provision.new_secret()
    emu = emulator.Emulator(":memory:", [(dvnuuid, secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    path = tmp_path / "config.json"
    cfg = {"dvnuuid": dvnuuid, "secret": secret, "url": server.url, "board": "unix"}
    path.write_text(json.dumps(dict(cfg, interval_s=1, outbox_dir=str(tmp_path / "outbox"))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "lib"), str(ROOT / "tools")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kpnthings_tools.host_run", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait(lambda: len(emu.messages(dvnuuid)) >= 1, 30), "the firmware never sent"
        firmware = _children(proc.pid)
        assert len(firmware) == 1 and _alive(firmware[0])
        os.kill(proc.pid, how)
        proc.wait(10)
        assert _wait(lambda: not _alive(firmware[0]), 10), "the firmware outlived host_run"
        sent = len(emu.messages(dvnuuid))
        time.sleep(2.5)  # two more cycles' time: nothing more arrives
        assert len(emu.messages(dvnuuid)) == sent
        if how != signal.SIGKILL:
            assert proc.returncode == 128 + how
    finally:
        if proc.poll() is None:
            proc.kill()
        server.shutdown()
