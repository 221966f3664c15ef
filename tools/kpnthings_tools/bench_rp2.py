"""`make bench` on the real chip: the MicroPython 1.28 RPI_PICO_W firmware on an emulated RP2040.

Runs only where $RP2EMU names the emulator (kpnthings_tools.rp2emu). Figures, each beside its
baseline from the same run:

- heap at rest: the deployed set of an HTTPS config on the chip's LittleFS under /lib, imported,
  plus the firmware's boot up to its loop, then gc.collect(); gc.mem_alloc(), read at the start
  of the second cycle. Baseline: micropython-senml + umqtt.simple + the firmware's own frozen
  `requests`, imported.
- CPU per message in RP2040 cycles (deterministic): the firmware path (batch.build_pack over a
  cycle's 3 readings + the token) and the plain Pack path, beside micropython-senml's build,
  to_json and SHA-256.
- the firmware booted from its deployed set for 20 cycles, the Wi-Fi chip failing (it does not
  exist in the emulator): every reading stored on the chip's LittleFS, nothing raised out of
  the loop, heap after collection flat across cycles; and flash erases per reading.

    RP2EMU=/path/to/rp2emu python -m kpnthings_tools.bench_rp2 [--json PATH]
"""

import argparse
import json
import ssl
import sys
import time
from pathlib import Path

from . import build, provision, rp2emu

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "bench" / "rp2"
OUT = ROOT / "build" / "bench" / "rp2"

TARGET_HEAP_AT_REST = 32 * 1024
TARGET_CPU = 0.5
CYCLES = 20
# Heap samples from this cycle on must stay within HEAP_FLAT_BYTES of each other: the first
# cycles import what the loop uses and open the outbox's first segment.
HEAP_FLAT_FROM = 2
HEAP_FLAT_BYTES = 512
# Messages per CPU figure: about 0.5 M cycles each, 0.1 s of host time each.
CPU_MESSAGES = 20
# The board and the https URL of the config whose deployed set is measured.
BOARD = "pico_w"
URL = "https://prod.dm.kpnthings.com"
# The firmware's own frozen module, part of the baseline a user would pick.
FROZEN_BASELINE = ("requests",)
# bench/rp2/cpu.py's (and bench/mp_bench.py's) published test secret, to check the chip's tokens.
REFERENCE_SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"  # noqa: S105


# ---- what goes onto the chip ---------------------------------------------------------------


def bench_config(identity, cycles):
    """An HTTPS config for the emulated Pico W: Wi-Fi settings (its chip fails), a CA file."""
    return {
        "dvnuuid": identity.dvnuuid,
        "secret": identity.secret,
        "board": BOARD,
        "url": URL,
        "wifi_ssid": "benchnet",
        "wifi_password": "bench-password",
        "ca_file": "ca.der",
        "interval_s": 1,
        "cycles": cycles,
    }


def ca_der():
    """A CA certificate in DER form (RSA-2048, as public CAs issue), from trustme."""
    import trustme

    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    return ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())


def _module_path(name):
    """A module as module_set or CORE_MODULES may name it -> its path in kpnthings/, no suffix."""
    name = str(name)
    for suffix in (".mpy", ".py"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    for prefix in ("lib/", "kpnthings/", "kpnthings."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name in ("", "kpnthings"):
        return "__init__"
    return name.replace(".", "/")


def deployed_modules(config):
    """(modules of kpnthings the config's deploy copies, where the list came from): from
    kpnthings_tools.modules.module_set(config) where it exists, else bench.CORE_MODULES."""
    try:
        from .modules import module_set
    except ImportError:
        module_set = None
    if module_set is not None:
        found = module_set(config)
        if isinstance(found, dict):
            found = list(found)
        names = [_module_path(m[0] if isinstance(m, (tuple, list)) else m) for m in found]
        source = "kpnthings_tools.modules.module_set"
    else:
        from .bench import CORE_MODULES

        names = list(CORE_MODULES)
        source = "kpnthings_tools.bench.CORE_MODULES"
    names = [n for n in names if not n.startswith("boards")]
    if "__init__" not in names:
        names.insert(0, "__init__")
    for n in list(names):
        pkg = n.rsplit("/", 1)[0] + "/__init__" if "/" in n else None
        if pkg and pkg not in names:
            names.append(pkg)  # a subpackage's modules need its __init__
    return sorted(set(names)), source


def dotted(module):
    """kpnthings/<module> as an import name: "sensors/dht" -> "kpnthings.sensors.dht"."""
    if module == "__init__":
        return "kpnthings"
    if module.endswith("/__init__"):
        module = module[: -len("/__init__")]
    return "kpnthings." + module.replace("/", ".")


def _board_mpy(ours_dir, name):
    mpy = Path(ours_dir) / "boards" / (name + ".mpy")
    if mpy.is_file():
        return mpy
    mpy = OUT / "boards" / (name + ".mpy")
    build.compile_file(
        ROOT / "boards" / (name + ".py"), mpy, "armv6m", source_name="boards/%s.py" % name
    )
    return mpy


# The pack API (senml.Pack and the decoder), which the CPU figure's Pack path and the SenML tests
# import; the firmware itself writes its packs with kpnthings.batch and does not deploy it.
PACK_API = ("senml", "senml_check", "senml_text", "senml_decode")


def library_modules(modules):
    """The deployed set plus the pack API, for runs that use the library beyond the firmware."""
    return sorted(set(modules) | set(PACK_API))


def firmware_files(ours_dir, modules, work):
    """[(local, remote)]: what `kpnthings deploy` puts on a Pico W for this set, but main.py and
    config.json (the bench runs main.py's two lines itself, with a probe, and puts a config
    per run). The CA is written to `work`."""
    ours_dir = Path(ours_dir)
    files = []
    for m in modules:
        mpy = ours_dir / "kpnthings" / (m + ".mpy")
        if not mpy.is_file():
            raise FileNotFoundError("%s: the deployed set names %s, not built" % (mpy, m))
        files.append((mpy, "/lib/kpnthings/%s.mpy" % m))
    for name in ("__init__", BOARD):
        files.append((_board_mpy(ours_dir, name), "/lib/boards/%s.mpy" % name))
    files.append((ROOT / "firmware" / "boot.py", "/boot.py"))
    ca = Path(work) / "ca.der"
    if not ca.is_file():
        ca.write_bytes(ca_der())
    files.append((ca, "/ca.der"))
    return files


def baseline_files(base_dir):
    """micropython-senml (.mpy, with the cbor2 stand-in) and umqtt.simple, under /lib."""
    base_dir = Path(base_dir)
    files = [
        (p, "/lib/" + p.relative_to(base_dir).as_posix()) for p in sorted(base_dir.rglob("*.mpy"))
    ]
    umqtt = OUT / "baseline" / "umqtt" / "simple.mpy"
    build.compile_file(SCRIPTS / "baseline" / "umqtt" / "simple.py", umqtt, "armv6m")
    files.append((umqtt, "/lib/umqtt/simple.mpy"))
    return files


def _params(**values):
    return "".join("%s = %r\n" % kv for kv in values.items())


def _one(result, prefix):
    lines = result.lines(prefix)
    return lines[0] if lines else None


def _failure(result, what):
    return "%s failed: %s" % (what, result.error())


# ---- heap at rest ----------------------------------------------------------------------------


def measure_imports(image, modules):
    """Heap in use on the chip after importing `modules` (dotted names) from `image`."""
    r = rp2emu.run(SCRIPTS / "heap_imports.py", code=_params(MODULES=modules), fs_in=image)
    if not r.ok:
        return {"error": _failure(r, "import run"), "host_s": round(r.host_s, 1)}
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
    cycle with a downlink, as the same firmware shows them on the unix port (which has a
    network, where the emulated Pico W has none); None if that run fails."""
    from .bench import firmware_run, runtimes

    run = firmware_run.run_firmware(
        runtimes.MP64, "armv6m", cycles=2, downlink=firmware_run.DOWNLINK_LED_ON
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
        return {"error": _failure(r, "CPU run (%s)" % impl), "host_s": round(r.host_s, 1)}
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


def _check_tokens(cpu):
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


# ---- all of it -------------------------------------------------------------------------------


def measure(ours_dir, base_dir):
    """Every figure above for the .mpy trees of bench.build_trees() (ours: kpnthings/*.mpy and
    boards/*.mpy; baseline: senml/*.mpy + cbor2.mpy). {"unavailable": why} when the emulator
    cannot run here (RP2EMU unset, node or npm missing); {"error": why} when the set-up failed
    (a module missing from ours_dir, say). A figure that failed has its own "error"."""
    try:
        emu = rp2emu.prepare()
    except rp2emu.Unavailable as e:
        return {"unavailable": str(e)}
    try:
        return _measure(emu, Path(ours_dir), Path(base_dir))
    except (OSError, ValueError, build.BuildError) as e:
        return {"error": "%s: %s" % (type(e).__name__, e)}


def _measure(emu, ours_dir, base_dir):
    started = time.monotonic()
    work = OUT / "work"
    work.mkdir(parents=True, exist_ok=True)
    identity = provision.new_identity()
    config = bench_config(identity, CYCLES)
    modules, source = deployed_modules(config)
    ours_files = firmware_files(ours_dir, modules, work)
    result = {
        "runtime": "MicroPython 1.28 RPI_PICO_W on an emulated RP2040 (rp2040js)",
        "emulator": str(emu),
        "deployed": {
            "modules": modules,
            "source": source,
            "mpy_bytes": sum(Path(p).stat().st_size for p, r in ours_files if r.endswith(".mpy")),
        },
        "host_s": {},
    }
    t = time.monotonic()
    ours_img = OUT / "ours.img"
    lib_img = OUT / "library.img"
    base_img = OUT / "baseline.img"
    lib_files = firmware_files(ours_dir, library_modules(modules), work)
    images = ((ours_img, ours_files), (lib_img, lib_files), (base_img, baseline_files(base_dir)))
    for img, files in images:
        r = rp2emu.build_image(files, img)
        if not r.ok:
            result["error"] = _failure(r, "copying files to the chip")
            return result
    result["host_s"]["images"] = round(time.monotonic() - t, 1)

    heap = {"target": TARGET_HEAP_AT_REST}
    heap["ours_imports"] = measure_imports(
        ours_img, [dotted(m) for m in modules] + ["boards." + BOARD]
    )
    base_modules = ["senml", "umqtt.simple", *FROZEN_BASELINE]
    heap["baseline"] = measure_imports(base_img, base_modules)
    heap["baseline"]["note"] = (
        "micropython-senml (.mpy) + umqtt.simple 1.7.0 (.mpy, bench/rp2/baseline) + the "
        "firmware's frozen requests, imported"
    )
    at_rest = measure_heap_at_rest(ours_img, work, identity, modules)
    heap["at_rest"] = at_rest
    result["heap"] = heap

    cpu = {"target": TARGET_CPU}
    cpu["ours"] = measure_cpu(lib_img, "ours")
    cpu["baseline"] = measure_cpu(base_img, "baseline")
    if "error" not in cpu["ours"] and "error" not in cpu["baseline"]:
        base = cpu["baseline"]["baseline_cycles"]
        cpu["ratio"] = round(cpu["ours"]["firmware_cycles"] / base, 3)
        cpu["pack_ratio"] = round(cpu["ours"]["pack_cycles"] / base, 3)
        cpu["bad_tokens"] = _check_tokens(cpu)
    result["cpu"] = cpu

    result["firmware_run"] = measure_firmware_run(ours_img, work, identity, at_rest)
    result["host_s"]["total"] = round(time.monotonic() - started, 1)
    return result


# ---- report ----------------------------------------------------------------------------------


def _mark(ok):
    return "met" if ok else "NOT met"


def _ratio(a, b):
    return round(a / b, 3) if a is not None and b else ""


def rows(result):
    """Table rows (figure, ours, baseline, ratio, target, met), as bench.table() prints them."""
    if "unavailable" in result:
        return [("rp2 (emulated Pico W): not run", result["unavailable"], "", "", "", "")]
    if "error" in result:
        return [("rp2 (emulated Pico W): failed", result["error"][:200], "", "", "", "NOT met")]
    out = []
    heap = result["heap"]
    base = heap["baseline"].get("bytes")
    rest = heap["at_rest"]
    label = "rp2: heap at rest in the loop, HTTPS config (B)"
    if rest.get("boot_error"):
        label = "rp2: heap at rest, HTTPS config, boot fallback: firmware boot dies (B)"
    if "bytes" in rest:
        out.append(
            (
                label,
                rest["bytes"],
                base if base is not None else "error",
                _ratio(rest["bytes"], base),
                "<= %d" % TARGET_HEAP_AT_REST,
                _mark(rest["bytes"] <= TARGET_HEAP_AT_REST),
            )
        )
    else:
        out.append((label, "error", base, "", "<= %d" % TARGET_HEAP_AT_REST, "NOT met"))
    imp = heap["ours_imports"].get("bytes")
    out.append(
        (
            "rp2: heap with the HTTPS set imported, no boot (B)",
            imp if imp is not None else "error",
            base if base is not None else "error",
            _ratio(imp, base),
            "",
            "",
        )
    )
    cpu = result["cpu"]
    if "ratio" in cpu:
        ours, b = cpu["ours"], cpu["baseline"]["baseline_cycles"]
        out.append(
            (
                "rp2: CPU firmware path, write_pack+sign (cycles/msg)",
                ours["firmware_cycles"],
                b,
                cpu["ratio"],
                "<= %.2f" % TARGET_CPU,
                _mark(cpu["ratio"] <= TARGET_CPU and not cpu["bad_tokens"]),
            )
        )
        out.append(
            (
                "rp2: CPU Pack add+encode+sign (cycles/msg)",
                ours["pack_cycles"],
                b,
                cpu["pack_ratio"],
                "",
                "",
            )
        )
    else:
        out.append(("rp2: CPU per message", "error", "", "", "<= %.2f" % TARGET_CPU, "NOT met"))
    fw = result["firmware_run"]
    out.append(
        (
            "rp2: %d cycles, Wi-Fi failing: readings stored" % fw["cycles_configured"],
            fw["stored"] if fw["stored"] is not None else "error",
            fw["readings_taken"],
            _ratio(fw["stored"], fw["readings_taken"]),
            "all, no exception, heap flat",
            _mark(fw["ok"]),
        )
    )
    if fw["heap_in_loop_bytes"] is not None:
        out.append(
            (
                "rp2: same, heap at the start of cycle 2, send path not yet imported (B)",
                fw["heap_in_loop_bytes"],
                base if base is not None else "",
                _ratio(fw["heap_in_loop_bytes"], base),
                "",
                "",
            )
        )
    out.append(
        (
            "rp2: same, heap spread after collect, cycles %d-%d (B)"
            % (HEAP_FLAT_FROM + 1, fw["cycles_configured"]),
            fw["heap_spread_bytes"] if fw["heap_spread_bytes"] is not None else "no samples",
            "",
            "",
            "<= %d" % HEAP_FLAT_BYTES,
            _mark(bool(fw["heap_flat"])),
        )
    )
    out.append(
        (
            "rp2: same, flash erases per reading",
            fw["erases_per_reading"] if fw["erases_per_reading"] is not None else "",
            "",
            "",
            "",
            "",
        )
    )
    return out


def table(result):
    lines = []
    header = ("figure", "ours", "baseline", "ratio", "target", "")
    for i, row in enumerate([header, *rows(result)]):
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
        if i == 0:
            lines.append("|" + "---|" * len(row))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m kpnthings_tools.bench_rp2", description=__doc__)
    ap.add_argument("--json", default=str(OUT / "results.json"), help="where to write the JSON")
    args = ap.parse_args(argv)
    from .bench.trees import build_trees

    ours_dir, base_dir, _ = build_trees("armv6m")
    result = measure(ours_dir, base_dir)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1, sort_keys=True))
    print(table(result))
    print("\nJSON: %s" % args.json)
    return 0 if "unavailable" not in result else 2


if __name__ == "__main__":
    sys.exit(main())
