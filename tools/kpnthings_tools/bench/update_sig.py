"""Issue 20: the update signature check on the board (kpnthings.update_verify, ECDSA P-256 over
the C SHA-256), timed and weighed on each unix port from the bench's .mpy tree.

- time: the median of five verifications of one signature made by `cryptography`;
- module heap: what importing update_verify holds (gc.mem_alloc() delta after gc.collect());
- peak heap of one verification: the smallest stable `-X heapsize` at which the script verifies,
  minus the smallest at which the same script stops just before verifying (heap_search), so the
  figure is the verification's own working heap, not the interpreter's;
The target is the issue's: the verification must need less heap than a full cycle.
"""

import tempfile
from pathlib import Path

from .. import release_keys
from . import heap_search, runtimes, trees

MARK = "@@VERIFY "
SCRIPT = """
import gc, hashlib, sys, time
gc.collect()
a0 = gc.mem_alloc()
from kpnthings import update_verify as u
gc.collect()
mod = gc.mem_alloc() - a0
d = hashlib.sha256(MSG).digest()
if sys.argv[-1] == "stop":
    print("%s0 0 %d 1" % mod)
    sys.exit(0)
gc.collect()
ok = u.verify(d, SIG, KEY)
times = []
for i in range(5):
    t = time.ticks_us()
    ok = u.verify(d, SIG, KEY) and ok
    times.append(time.ticks_diff(time.ticks_us(), t))
times.sort()
print("%s%d 0 %d %d" % (times[2], mod, ok))
"""


def _script(folder):
    key = release_keys.new_private_key()
    msg = b'{"version":"1.0.0","files":[]}'
    text = SCRIPT.replace("%s", MARK).replace("MSG", repr(msg))
    text = text.replace("SIG", repr(release_keys.sign(key, msg)))
    text = text.replace("KEY", repr(release_keys.public_bytes(key)))
    path = Path(folder) / "bench_verify.py"
    path.write_text(text)
    return path


def _parse(out):
    for line in out.splitlines():
        if line.startswith(MARK):
            return [int(x) for x in line[len(MARK) :].split()]
    return None


def measure(runtime, arch):
    """{"us", "module_bytes", "peak_bytes", "min_heap_bytes"} or {"error"}."""
    tree = trees.ours(arch)
    with tempfile.TemporaryDirectory() as tmp:
        script = _script(tmp)
        run = runtimes.run(runtime, [tree], script, timeout=120)
        got = _parse(run.stdout)
        if run.returncode or not got or got[3] != 1:
            return {"error": (run.stdout + run.stderr)[-2000:], "runtime": runtime.name}

        def ok(stop):
            def passes(heap):
                args = [script] + (["stop"] if stop else [])
                r = runtimes.run(runtime, [tree], *args, heapsize=heap, timeout=120)
                return r.returncode == 0 and _parse(r.stdout) is not None, r.stdout + r.stderr

            return passes

        full = heap_search.smallest_stable_heap(ok(False), lo=2048, hi=128 * 1024)
        before = heap_search.smallest_stable_heap(ok(True), lo=2048, hi=128 * 1024)
    if "min_heap_bytes" not in full or "min_heap_bytes" not in before:
        return {"error": full.get("error") or before.get("error"), "runtime": runtime.name}
    return {
        "runtime": runtime.name,
        "us": got[0],
        "module_bytes": got[2],
        "min_heap_bytes": full["min_heap_bytes"],
        "peak_bytes": max(0, full["min_heap_bytes"] - before["min_heap_bytes"]),
    }


def measure_all():
    have = [rt for rt in (runtimes.stock32(), runtimes.MP64) if rt]
    return {rt.name: measure(rt, trees.ARCH_FOR_MODEL[rt.model]) for rt in have}


def rows(r):
    """The table's rows: time and heap of one verification per runtime."""
    out = []
    per = r.get("update_verify", {})
    cycle = (r.get("full_cycle_https", {}).get("esp32") or {}).get("min_heap_bytes")
    for name in ("micropython32-stock", "micropython64"):
        fig = per.get(name)
        label = "update: ECDSA P-256 verification, %s" % name
        if fig is None:
            out.append((label, "runtime not set", "", "", "", "not measured"))
            continue
        if "error" in fig:
            out.append((label, "error", "", "", "", "NOT met"))
            continue
        out.append((label + ", time (ms)", round(fig["us"] / 1000, 1), "", "", "", ""))
        target = "< full cycle (%s)" % cycle if cycle else "< full cycle"
        met = "" if not cycle else ("met" if fig["min_heap_bytes"] < cycle else "NOT met")
        out.append(
            (
                label
                + ", peak heap of the check (B; module %d, smallest -X heapsize %d)"
                % (fig["module_bytes"], fig["min_heap_bytes"]),
                fig["peak_bytes"],
                "",
                "",
                target,
                met,
            )
        )
    return out
