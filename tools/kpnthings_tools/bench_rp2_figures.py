"""The figures `make bench` measures on the emulated Pico W, each a run of a bench/rp2 script.

- heap held by a set of modules once imported;
- heap at rest: the firmware booted from its deployed set, read at the start of its second cycle
  (or the boot fallback where the boot dies);
- CPU cycles per message, the firmware path and the Pack path beside micropython-senml's;
- the firmware for CYCLES cycles with the Wi-Fi chip failing: every reading stored, nothing
  raised, heap flat, flash erases per reading.
"""

import json
from pathlib import Path

from . import rp2emu
from .bench_rp2_files import BOARD, SCRIPTS, bench_config, dotted

TARGET_HEAP_AT_REST = 32 * 1024
TARGET_CPU = 0.5
CYCLES = 20
# Heap samples from this cycle on must stay within HEAP_FLAT_BYTES of each other: the first
# cycles import what the loop uses and open the outbox's first segment.
HEAP_FLAT_FROM = 2
HEAP_FLAT_BYTES = 512
# Messages per CPU figure: about 0.5 M cycles each, 0.1 s of host time each.
CPU_MESSAGES = 20
# bench/rp2/cpu.py's (and bench/mp_bench.py's) published test secret, to check the chip's tokens.
REFERENCE_SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"  # noqa: S105


def _params(**values):
    return "".join("%s = %r\n" % kv for kv in values.items())


def _one(result, prefix):
    lines = result.lines(prefix)
    return lines[0] if lines else None


def run_failure(result, what):
    return "%s failed: %s" % (what, result.error())


# ---- heap at rest ----------------------------------------------------------------------------


def measure_imports(image, modules):
    """Heap in use on the chip after importing `modules` (dotted names) from `image`."""
    r = rp2emu.run(SCRIPTS / "heap_imports.py", code=_params(MODULES=modules), fs_in=image)
    if not r.ok:
        return {"error": run_failure(r, "import run"), "host_s": round(r.host_s, 1)}
    before, after = int(_one(r, "@@HEAP before")), int(_one(r, "@@HEAP after"))
    return {
        "bytes": after,
        "imports_bytes": after - before,
        "modules": list(modules),
        "host_s": round(r.host_s, 1),
    }


def _write_config(work, name, identity, cycles):
    path = Path(work) / name
    path.write_text(json.dumps(bench_config(identity, cycles)))
    return path


def run_firmware(image, config_path, preload, script="firmware_run.py"):
    """The firmware (or the boot fallback) on the chip booted from `image` with this config."""
    from kpnthings import outbox

    code = _params(
        PRELOAD=list(preload),
        OUTBOX_DIR="outbox",
        OUTBOX_MAX=outbox._DEFAULT_MAX_BYTES,
        DEAD_MAX=outbox._DEFAULT_DEAD_BYTES,
    )
    return rp2emu.run(
        SCRIPTS / script, code=code, puts=[(config_path, "/config.json")], fs_in=image
    )


def _firmware_outcome(r):
    """What a firmware_run.py run shows: samples, readings, stored, what ended it."""
    heap = [int(x) for x in r.lines("@@HEAP")]
    reads = [int(x) for x in r.lines("@@READ")]
    stored = _one(r, "@@STORED")
    raised = _one(r, "@@RAISED")
    exited = _one(r, "@@EXIT")
    log = [line for line in r.stdout.splitlines() if line and not line.startswith("@@")]
    failures = [line for line in log if line.startswith("[kpn] cycle ") and " failed:" in line]
    return {
        "heap_samples": heap,
        "cycles_run": len(reads),
        "readings_taken": sum(reads),
        "stored": int(stored) if stored is not None else None,
        "raised": raised,
        "exit": exited,
        "cycle_failures": failures,
        "log_tail": log[-12:],
        "returncode": r.returncode,
        "flash": dict(r.flash),
        "host_s": round(r.host_s, 1),
    }


def loop_modules():
    """The library modules the firmware holds at the start of its second cycle, after one whole
    cycle with a downlink and the rest before the wait (idle_close_s 0, as at the default 60 s
    interval), as the same firmware shows them on the unix port (which has a network, where the
    emulated Pico W has none); None if that run fails."""
    from .bench import firmware_run, runtimes

    run = firmware_run.run_firmware(
        runtimes.MP64,
        "armv6m",
        cycles=2,
        downlink=firmware_run.DOWNLINK_LED_ON,
        config={"idle_close_s": 0},  # rested before cycle 2, as bench/at_rest.py measures it
    )
    for line in run.stdout.splitlines():
        if line.startswith("@@MODULES "):
            return line.split()[1:]
    return None


def measure_heap_at_rest(image, work, identity, modules):
    """Heap in use at the start of the second cycle. The chip has no network, so the modules a
    sending loop holds (loop_modules(), from the unix port) are imported first; if that list
    cannot be had, every deployed module. If the boot dies, the boot fallback (wiring.boot()
    with the Wi-Fi wait cut short) instead."""
    held = loop_modules()
    if held:
        preload = [m for m in held if m != "kpnthings"] + ["boards." + BOARD]
    else:
        preload = [dotted(m) for m in modules] + ["boards." + BOARD]
    config = _write_config(work, "config-2.json", identity, 2)
    r = run_firmware(image, config, preload)
    out = _firmware_outcome(r)
    out["preloaded"] = preload
    if len(out["heap_samples"]) >= 2:
        out["bytes"] = out["heap_samples"][1]
        out["method"] = "firmware loop, start of cycle 2, %s imported first" % (
            "the modules a sending loop holds" if held else "every deployed module"
        )
        return out
    out["boot_error"] = out["raised"] or out["exit"] or r.error() or "the loop never started"
    fb = run_firmware(image, config, preload, script="boot_fallback.py")
    heap = _one(fb, "@@HEAP")
    if heap is None:
        out["error"] = "boot died, and so did the fallback: %s" % fb.error()
        return out
    out["bytes"] = int(heap)
    out["method"] = (
        "fallback: the firmware's boot dies on this chip (%s), so this is the deployed set "
        "imported plus wiring.boot() with the Wi-Fi wait cut short, boot-only modules unloaded"
        % out["boot_error"]
    )
    out["host_s"] = round(out["host_s"] + fb.host_s, 1)
    return out


# ---- CPU per message -------------------------------------------------------------------------


def measure_cpu(image, impl, n=CPU_MESSAGES):
    """CPU cycles per message for each path of bench/rp2/cpu.py, the empty loop subtracted.

    The figure is the loop's time on the chip's own microsecond timer, which runs on the
    emulated clock, times clk_sys: the loop never sleeps, so that is its cycle count, to within
    125 cycles a loop. The runner's own count between the @@MARK lines is kept beside it; it
    is stamped when a line reaches the host, so each interval can be off by up to one USB frame
    (1 ms, 125 000 cycles)."""
    r = rp2emu.run(SCRIPTS / "cpu.py", code=_params(IMPL=impl, N=n), fs_in=image)
    if not r.ok:
        return {"error": run_failure(r, "CPU run (%s)" % impl), "host_s": round(r.host_s, 1)}
    mhz = r.stats["clk_sys_hz"] / 1e6
    us = {label: int(v) for label, v in (x.split() for x in r.lines("@@US"))}
    empty = r.mark_cycles("empty-start", "empty-end")
    out = {"messages": n, "clk_sys_mhz": mhz, "host_s": round(r.host_s, 1)}
    for label in ("firmware", "pack") if impl == "ours" else ("baseline",):
        out[label + "_us"] = round((us[label] - us["empty"]) / n, 1)
        out[label + "_cycles"] = round((us[label] - us["empty"]) * mhz / n)
        out[label + "_mark_cycles"] = (r.mark_cycles(label + "-start", label + "-end") - empty) // n
    out["bodies"] = dict(line.split(" ", 1) for line in r.lines("@@BODY"))
    out["tokens"] = dict(line.split(" ", 1) for line in r.lines("@@TOKEN"))
    return out


def check_tokens(cpu):
    """Each path's token is the one KPN computes over the body the chip built."""
    import hashlib

    secret = REFERENCE_SECRET
    bad = []
    for side in ("ours", "baseline"):
        for label, body in cpu.get(side, {}).get("bodies", {}).items():
            want = hashlib.sha256(body.encode() + secret.encode()).hexdigest()
            if cpu[side]["tokens"].get(label) != want:
                bad.append(label)
    return bad


# ---- the 20-cycle run ------------------------------------------------------------------------


def _flat(samples):
    steady = samples[HEAP_FLAT_FROM:]
    if len(steady) < 2:
        return None, None
    spread = max(steady) - min(steady)
    return spread <= HEAP_FLAT_BYTES, spread


def measure_firmware_run(image, work, identity, at_rest=None):
    """The firmware from its deployed set for CYCLES cycles with the Wi-Fi chip failing."""
    config = _write_config(work, "config-%d.json" % CYCLES, identity, CYCLES)
    r = run_firmware(image, config, [])
    out = _firmware_outcome(r)
    out["cycles_configured"] = CYCLES
    # The loop as it runs with the link down: what a send would import is not loaded yet.
    samples = out["heap_samples"]
    out["heap_in_loop_bytes"] = samples[1] if len(samples) > 1 else None
    flat, spread = _flat(out["heap_samples"])
    out["heap_flat"] = flat
    out["heap_spread_bytes"] = spread
    out["heap_flat_rule"] = "samples from cycle %d on within %d B" % (
        HEAP_FLAT_FROM + 1,
        HEAP_FLAT_BYTES,
    )
    out["every_reading_stored"] = bool(out["readings_taken"]) and (
        out["stored"] == out["readings_taken"]
    )
    problems = []
    if out["raised"] or out["exit"] is not None or not r.ok:
        problems.append(
            "the firmware ended: %s" % (out["raised"] or "exit %s" % out["exit"] or r.error())
        )
    if out["cycles_run"] != CYCLES:
        problems.append("%d of %d cycles ran" % (out["cycles_run"], CYCLES))
    if not out["every_reading_stored"]:
        problems.append("%s of %d readings stored" % (out["stored"], out["readings_taken"]))
    if flat is False:
        problems.append("heap not flat: spread %d B" % spread)
    out["ok"] = not problems
    out["problems"] = problems
    # Erases per reading: this run against the 2-cycle run from the same image, so the boot's
    # own writes (outbox folder, first commit, config.json) cancel out.
    erases = out["flash"].get("eraseCalls")
    out["erases_per_reading"] = None
    if erases is not None and out["readings_taken"]:
        base = at_rest or {}
        if base.get("readings_taken") and base.get("flash") and not base.get("boot_error"):
            dr = out["readings_taken"] - base["readings_taken"]
            if dr > 0:
                de = erases - base["flash"]["eraseCalls"]
                out["erases_per_reading"] = round(de / dr, 2)
                out["erases_per_reading_method"] = "(%d-cycle run - 2-cycle run) / readings" % (
                    CYCLES
                )
        if out["erases_per_reading"] is None:
            out["erases_per_reading"] = round(erases / out["readings_taken"], 2)
            out["erases_per_reading_method"] = "whole run (boot included) / readings"
    return out
