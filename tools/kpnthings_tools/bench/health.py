"""Health records' cost on the wire (docs/health.md): bytes per hour at the default setting
(config.DEFAULTS' health_every and interval_s), from the packs the library builds.

bench/health_bench.py runs the real Device, outbox and pack writer on the MicroPython unix port
for a few hours of simulated cycles, once with health records and once without, over the same
readings; the difference is what health costs. The first set of a boot (the whole set) is given
apart from the sets after it, which are what an hour costs once the board runs.
"""

import json
import tempfile

from . import runtimes, trees


def measure(runtime, arch):
    """{"health_bytes_per_hour", "first_set_bytes", "sets_after", ...} or {"error"}."""
    where = tempfile.mkdtemp(prefix="kpn-health-bench-") + "/outbox"
    proc = runtimes.run(runtime, [trees.ours(arch)], trees.BENCH / "health_bench.py", where)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stdout + proc.stderr)[-2000:], "runtime": runtime.name}
    out = json.loads(lines[-1])
    out["runtime"] = runtime.name
    return out


def measure_all():
    """The figures on the 32-bit ESP32 model when it is there, and on the 64-bit port."""
    out = {}
    for rt in (runtimes.stock32(), runtimes.MP64):
        if rt:
            out[rt.name] = measure(rt, trees.ARCH_FOR_MODEL[rt.model])
    return out


def rows(r):
    """Rows for the bench table: bytes per hour of health, and the first set of a boot."""
    out = []
    for name, m in sorted((r or {}).items()):
        if "error" in m:
            out.append(("health: bytes per hour, %s" % name, m["error"][-200:], "", "", "", ""))
            continue
        label = "health: bytes per hour, every %d cycles of %d s, %s (B)" % (
            m["health_every"],
            m["interval_s"],
            name,
        )
        share = "%.1f%% of the readings' %d" % (
            100.0 * m["health_bytes_per_hour"] / m["readings_bytes_per_hour"],
            m["readings_bytes_per_hour"],
        )
        out.append((label, m["health_bytes_per_hour"], "", share, "", ""))
        out.append(
            ("health: first set after a boot, %s (B)" % name, m["first_set_bytes"], "", "", "", "")
        )
    return out
