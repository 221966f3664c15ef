"""A power cut (SIGKILL) at every step of an update, on the unix port with real files: while the
offer is polled, while the release downloads into the staging folder, while it is checked,
while the marker is written, and on the new version's trial boot until it is trusted. After
each cut the board boots again to the end (K = 3): every boot runs the base or the new version,
whole (the folder the marker names holds exactly its manifest's files), never a mixture, never
a traceback; and the update still completes. KPN_UPDATE_CUTS trials (default 200)."""

import os
import random
import shutil
import signal
import subprocess
import time

import pytest
from _update_support import Rig, make_release

from kpnthings import __version__ as BASE

TRIALS = int(os.environ.get("KPN_UPDATE_CUTS", "200"))


def _timed_boot(rig):
    """(stdout, seconds to each marker line) of one whole boot."""
    start = time.monotonic()
    proc = subprocess.Popen(
        rig.command(), cwd=rig.board, env=rig.env, stdout=subprocess.PIPE, text=True
    )
    seen = {}
    out = []
    for line in proc.stdout:
        out.append(line)
        for mark in ("offered: fetching", "checked and switched", "[boot] done"):
            if mark in line:
                seen[mark] = time.monotonic() - start
    proc.wait(timeout=60)
    seen["end"] = time.monotonic() - start
    return "".join(out), seen


def _reset(rig):
    for name in ("u", "outbox", "seq"):
        path = rig.board / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _cut(rig, delay):
    """Boot, and boot again after the reset into the new version, killing at `delay` s."""
    start = time.monotonic()
    for _ in range(2):
        proc = subprocess.Popen(
            rig.command(), cwd=rig.board, env=rig.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=max(0.0, delay - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
            return out, "killed"
        assert "Traceback" not in out + err, out[-2000:] + err[-2000:]
    return out, "not killed"


def _phase(rig, out):
    w = rig.marker()
    if w is None:
        staged = rig.board / "u" / "a"
        n = sum(1 for p in staged.rglob("*") if p.is_file()) if staged.is_dir() else 0
        if "offered: fetching" not in out:
            return "before the download"
        return "download or check (%s files staged)" % ("some" if n else "no")
    if len(w) == 8:
        return "after the switch, on trial"
    return "after the trust"


@pytest.mark.slow
def test_power_cut_at_every_step_leaves_a_bootable_board(tmp_path, mp_env, capsys):
    rng = random.Random(int(os.environ.get("KPN_UPDATE_SEED", "1")))
    rig = Rig(tmp_path, mp_env, boots=3, cycles=1)
    try:
        make_release(rig.releases, "9.0.0", rig.key)
        rig.emu.updates.offer("9.0.0", "all")
        _reset(rig)
        out, first = _timed_boot(rig)
        assert "checked and switched" in out
        _out, second = _timed_boot(rig)
        assert rig.marker()[1:] == ["u/a", "9.0.0", "."]
        t_fetch, t_switch = first["offered: fetching"], first["checked and switched"]
        total = first["end"] + second["end"]
        phases = {}
        for trial in range(TRIALS):
            _reset(rig)
            if trial % 2:  # half of the cuts fall in the download, the check and the switch
                delay = rng.uniform(t_fetch * 0.8, t_switch * 1.1)
            else:  # the rest anywhere in the two boots
                delay = rng.uniform(0, total * 1.05)
            out, how = _cut(rig, delay)
            phase = _phase(rig, out) if how == "killed" else "no cut: both boots ended first"
            phases[phase] = phases.get(phase, 0) + 1
            assert rig.slot_intact(), (trial, delay, phase)
            ran = []
            for _ in range(4):
                proc = rig.boot()
                text = proc.stdout + proc.stderr
                assert proc.returncode == 0 and "Traceback" not in text, (
                    trial,
                    phase,
                    text[-3000:],
                )
                ran.append(rig.running(proc.stdout))
                assert ran[-1] in (BASE, "9.0.0"), (trial, phase, ran)
                assert rig.slot_intact(), (trial, phase, ran)
                if rig.marker() is not None and rig.marker()[1:] == ["u/a", "9.0.0", "."]:
                    if ran[-1] == "9.0.0":
                        break
            assert ran[-1] == "9.0.0", (trial, delay, phase, ran)
            assert rig.marker()[1:] == ["u/a", "9.0.0", "."], (trial, phase, rig.marker())
        with capsys.disabled():
            print(
                "\nupdate power cuts: %d trials survived; where the cut fell: %s" % (TRIALS, phases)
            )
        # the cuts did fall before, during and after the switch
        assert phases.get("download or check (some files staged)", 0) >= TRIALS // 10
        assert phases.get("after the switch, on trial", 0) >= TRIALS // 10
    finally:
        rig.close()
