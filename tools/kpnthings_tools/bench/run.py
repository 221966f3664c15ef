"""`make bench`: measure everything, print the tables, write build/bench/results.json.

    python -m kpnthings_tools.bench [--json PATH] [--arch xtensawin|armv6m] [--skip-full-cycle]

Runtimes come from variables (see runtimes.py): MICROPYTHON32_STOCK (ESP32 model),
MICROPYTHON32 (Pico W model), RP2EMU (the emulated RP2040, through kpnthings_tools.bench_rp2
when that module is there). Without them the 64-bit figures still print.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from . import (
    at_rest,
    backlog,
    deep_sleep,
    flash,
    full_cycle,
    health,
    module_heap,
    per_message,
    pki,
    report,
    runtimes,
    trees,
    update_sig,
    wire,
)


def _step(text):
    print(text + " ...", flush=True)


def rp2_figures(ours_dir, base_dir):
    """(result, rows, note): the emulated RP2040's figures, when RP2EMU is set and
    kpnthings_tools.bench_rp2 is there."""
    if not os.environ.get("RP2EMU"):
        return None, [], "RP2EMU unset: no figures from the emulated RP2040"
    try:
        from kpnthings_tools import bench_rp2
    except ImportError:
        return None, [], "kpnthings_tools.bench_rp2 not present: no figures from the RP2040"
    try:
        result = bench_rp2.measure(ours_dir, base_dir)
        return result, [list(row) for row in bench_rp2.rows(result)], None
    except Exception as e:  # one failing part must not lose every other figure
        return {"error": "%s: %s" % (type(e).__name__, e)}, [], "RP2040 figures failed: %s" % e


def measure_issue15(results, chains, skip_heap_search=False):
    """Issue 15's figures on every runtime that is there; fills `results` in place."""
    stock, picow, host = runtimes.stock32(), runtimes.picow32(), runtimes.MP64
    arch_of = {rt.name: trees.ARCH_FOR_MODEL[rt.model] for rt in (stock, picow, host) if rt}
    have = [rt for rt in (stock, picow, host) if rt]

    _step("heap at rest in the loop")
    results["at_rest"] = {
        rt.name: {n: at_rest.measure(rt, arch_of[rt.name], c) for n, c in chains.items()}
        for rt in have
    }
    _step("module heap")
    results["module_heap"] = {
        rt.name: module_heap.measure(rt, arch_of[rt.name]) for rt in (stock, host) if rt
    }
    results["baseline_imports"] = {
        rt.name: module_heap.measure_baseline(rt, arch_of[rt.name]) for rt in have
    }
    _step("bytes allocated per message")
    results["alloc_per_message"] = {
        rt.name: per_message.measure_alloc(
            rt, trees.ours(arch_of[rt.name]), trees.baseline(arch_of[rt.name])
        )
        for rt in (stock, host)
        if rt
    }
    results["runtimes_present"] = [rt.name for rt in have]
    results["have_models"] = [rt.model for rt in have]
    results["heap_search_skipped"] = skip_heap_search
    if skip_heap_search:
        return
    https = results["full_cycle_https"] = {}
    if stock:
        _step("smallest heap, full cycle over HTTPS, ESP32 model")
        https["esp32"] = full_cycle.measure_models(
            stock, arch_of[stock.name], chains, full_cycle.TARGET_ESP32
        )
    if picow:
        _step("smallest heap, full cycle over HTTPS, Pico W model")
        https["pico_w"] = full_cycle.measure_models(
            picow, arch_of[picow.name], chains, full_cycle.TARGET_PICOW
        )
    _step("smallest heap, draining a %d-reading backlog vs one pack" % backlog.BACKLOG)
    results["backlog"] = {
        rt.name: backlog.measure(rt, arch_of[rt.name], chains["ec"]) for rt in (stock, host) if rt
    }


def main(argv=None):
    ap = argparse.ArgumentParser(prog="kpnthings-bench", description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=str(trees.OUT / "results.json"), help="where to write JSON")
    ap.add_argument("--arch", default="xtensawin", choices=("xtensawin", "armv6m"))
    ap.add_argument("--skip-full-cycle", action="store_true", help="skip the heap bisections")
    args = ap.parse_args(argv)

    hint = runtimes.missing_hint()
    for arch in ("xtensawin", "armv6m"):
        trees.build_trees(arch)
    ours_dir, base_dir = trees.ours(args.arch), trees.baseline(args.arch)
    results = {
        "arch_loaded": args.arch,
        "runtimes": {
            "micropython64": runtimes.MP64.binary,
            "micropython32-stock": getattr(runtimes.stock32(), "binary", None),
            "micropython32": getattr(runtimes.picow32(), "binary", None),
        },
        "runtimes_missing_hint": hint,
    }
    chains = pki.make_chains(trees.OUT / "pki")
    _step("wire bytes")
    results["wire"] = wire.measure_wire(ours_dir, base_dir)
    _step("health records: bytes per hour at the default setting")
    results["health"] = health.measure_all()
    _step("CPU and heap per message (64-bit)")
    results["cpu_heap"] = per_message.measure_cpu_heap(ours_dir, base_dir)
    if args.skip_full_cycle:
        results["full_cycle"] = {"error": "skipped"}
    else:
        _step("smallest heap for one full cycle (64-bit, plain HTTP)")
        results["full_cycle"] = full_cycle.measure_full_cycle(ours_dir)
        results["full_cycle_romfs"] = full_cycle.measure_full_cycle(
            ours_dir, full_cycle.romfs_image(ours_dir)
        )
    measure_issue15(results, chains, skip_heap_search=args.skip_full_cycle)
    _step("deep-sleep duty cycle: wakes on the unix port, and a battery estimate")
    results["deep_sleep"] = deep_sleep.measure(args.arch, chains["rsa"])
    _step("update signature check (ECDSA P-256), time and heap")
    results["update_verify"] = update_sig.measure_all()
    results["flash"] = flash.measure_flash()
    results["baseline_mpy_bytes"] = {
        a: flash.baseline_mpy_bytes(a) for a in ("xtensawin", "armv6m")
    }
    results["connections"] = wire.measure_connections(results["wire"])
    _step("emulated RP2040")
    rp2, rp2_rows, rp2_note = rp2_figures(trees.ours("armv6m"), trees.baseline("armv6m"))
    results["rp2"], results["rp2_rows"], results["rp2_note"] = rp2, rp2_rows, rp2_note

    results["table"] = report.table(results)
    results["module_table"] = report.module_table(results)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, sort_keys=True, default=str))
    print()
    if hint:
        print(hint)
    if rp2_note:
        print(rp2_note)
    print()
    print(results["table"])
    print()
    print(deep_sleep.assumptions())
    print()
    print("What each module holds once imported (gc.mem_alloc() delta after gc.collect()):")
    print()
    print(results["module_table"])
    print()
    print("JSON: %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
