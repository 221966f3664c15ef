"""The emulated Pico W's rows in `make bench`'s table (figure, ours, baseline, ratio, target,
met), from what kpnthings_tools.bench_rp2.measure() returns."""

from .bench.table_format import HEADER, mark, markdown
from .bench_rp2_figures import HEAP_FLAT_BYTES, HEAP_FLAT_FROM, TARGET_CPU, TARGET_HEAP_AT_REST


def _ratio(a, b):
    # Not table_format.ratio: a figure of the chip may be missing (None).
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
                mark(rest["bytes"] <= TARGET_HEAP_AT_REST),
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
                mark(cpu["ratio"] <= TARGET_CPU and not cpu["bad_tokens"]),
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
            mark(fw["ok"]),
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
            mark(bool(fw["heap_flat"])),
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
    return markdown([HEADER, *rows(result)])
