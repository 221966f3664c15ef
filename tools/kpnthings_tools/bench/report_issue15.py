"""Issue 15's target table: heap at rest, the smallest heap for a full cycle over verified HTTPS,
draining a backlog, .mpy deployed and bytes allocated per message. Each 32-bit figure is followed
by the same figure on the 64-bit port; a figure whose runtime is not there says so instead of a
number."""

from .. import build
from . import at_rest, backlog, flash, full_cycle, per_message
from .table_format import absent, mark, ratio


def _missing(r):
    """Why a figure of a runtime that is there has no result: the heap searches were skipped."""
    return "skipped" if r.get("heap_search_skipped") else "runtime not set"


def _worst(per_chain):
    """The larger of the chains' figures (key 'bytes'), with its chain's name."""
    good = {k: v for k, v in per_chain.items() if "bytes" in v}
    if not good:
        return None, None
    name = max(good, key=lambda k: good[k]["bytes"])
    return good[name]["bytes"], name


def at_rest_rows(r):
    rows = []
    base = r.get("baseline_imports", {})
    for key, label in (
        ("micropython32-stock", "heap at rest in the loop, ESP32 model (micropython32-stock)"),
        ("micropython32", "heap at rest in the loop, Pico W model (micropython32, TLS kept)"),
        ("micropython64", "heap at rest in the loop, 64-bit port"),
    ):
        per = r.get("at_rest", {}).get(key)
        if per is None:
            rows.append(absent(label + " (B)", "runtime not set"))
            continue
        value, chain = _worst(per)
        if value is None:
            rows.append((label + " (B)", "error", "", "", "", "NOT met"))
            continue
        b = base.get(key, {}).get("total")
        is_32 = key != "micropython64"
        rows.append(
            (
                "%s, HTTPS %s, vs micropython-senml + requests imported (B)" % (label, chain),
                value,
                b if b is not None else "",
                ratio(value, b) if b else "",
                "",
                "",
            )
        )
        board = per[chain].get("board_bytes")
        if board is not None:
            rows.append(
                (
                    "same, less the host's machine stand-in (%d B; built into a board's firmware)"
                    % per[chain]["stand_in_bytes"],
                    board,
                    b if b is not None else "",
                    ratio(board, b) if b else "",
                    "<= %d" % at_rest.TARGET if is_32 else "",
                    mark(board <= at_rest.TARGET) if is_32 else "",
                )
            )
        if per[chain].get("qstrs") is not None:
            rows.append(
                (
                    "same: of which interned names, %d in %d pools (one name can cost a pool)"
                    % (per[chain]["qstrs"], per[chain]["qstr_pools"]),
                    per[chain]["qstr_bytes"],
                    "",
                    "",
                    "",
                    "",
                )
            )
    return rows


def full_cycle_rows(r):
    rows = []
    https = r.get("full_cycle_https", {})
    for key, label, target in (
        ("esp32", "ESP32 model (micropython32-stock)", full_cycle.TARGET_ESP32),
        ("pico_w", "Pico W model (micropython32)", full_cycle.TARGET_PICOW),
    ):
        fig = https.get(key)
        title = "heap: smallest -X heapsize, full cycle over verified HTTPS, %s" % label
        if fig is None:
            rows.append(
                absent(title, _missing(r) if key in r.get("have_models", ()) else "runtime not set")
            )
            continue
        chains = fig.get("chains", {})
        detail = ", ".join(
            "%s %s" % (n, c.get("min_heap_bytes", "error")) for n, c in sorted(chains.items())
        )
        if "min_heap_bytes" not in fig:
            rows.append((title + " (%s)" % detail, "error", "", "", "<= %d" % target, "NOT met"))
            continue
        base = fig.get("baseline_bytes")
        rows.append(
            (
                title
                + ", larger of EC/RSA-2048 (%s), vs micropython-senml + a verified TLS POST"
                % detail,
                fig["min_heap_bytes"],
                base or "",
                ratio(fig["min_heap_bytes"], base) if base else "",
                "<= %d" % target,
                mark(fig["min_heap_bytes"] <= target),
            )
        )
    fc = r.get("full_cycle", {})
    if "min_heap_bytes" in fc:
        rows.append(
            (
                "heap: same, 64-bit port, plain HTTP (as make bench always measured it)",
                fc["min_heap_bytes"],
                "",
                "",
                "",
                "",
            )
        )
    else:
        rows.append(("heap: same, 64-bit port, plain HTTP", "error", "", "", "", ""))
    fr = r.get("full_cycle_romfs", {})
    if "min_heap_bytes" in fr:
        rows.append(
            (
                "heap: same, 64-bit, bytecode in place (ROMFS; frozen is lower still)",
                fr["min_heap_bytes"],
                "",
                "",
                "",
                "",
            )
        )
    return rows


def backlog_rows(r):
    rows = []
    for key, label in (
        ("micropython32-stock", "micropython32-stock"),
        ("micropython64", "64-bit port"),
    ):
        fig = r.get("backlog", {}).get(key)
        title = "heap: drain a %d-reading backlog vs one pack, %s, HTTPS" % (
            backlog.BACKLOG,
            label,
        )
        if fig is None:
            rows.append(
                absent(title, _missing(r) if key in r["runtimes_present"] else "runtime not set")
            )
            continue
        if "diff_bytes" not in fig:
            rows.append((title, "error", "", "", "", "NOT met"))
            continue
        rows.append(
            (
                title + " (B)",
                fig["drain_bytes"],
                fig["one_pack_bytes"],
                ratio(fig["drain_bytes"], fig["one_pack_bytes"]),
                "<= one pack + %d" % backlog.TARGET_DIFF,
                mark(fig["diff_bytes"] <= backlog.TARGET_DIFF),
            )
        )
    return rows


def deployed_rows(r):
    f = r["flash"]
    rows = []
    for arch in build.ARCHS:
        ours = f[arch]["deployed_https"]
        base = r.get("baseline_mpy_bytes", {}).get(arch)
        rows.append(
            (
                "flash: .mpy deployed, HTTPS config without sensors, %s, vs micropython-senml (B)"
                % arch,
                ours,
                base or "",
                ratio(ours, base) if base else "",
                "<= %d" % flash.TARGET_DEPLOYED,
                mark(ours <= flash.TARGET_DEPLOYED),
            )
        )
    return rows


def alloc_rows(r):
    rows = []
    per = r.get("alloc_per_message", {})
    for key, label in (
        ("micropython32-stock", "micropython32-stock"),
        ("micropython64", "64-bit port"),
    ):
        h = per.get(key)
        title = "heap: firmware path (batch.write_pack + sign), allocated per message, %s" % label
        if h is None:
            rows.append(absent(title, "runtime not set"))
            continue
        rows.append(
            (
                title + " (B)",
                h["device_path_bytes"],
                h["micropython_senml_build_to_json_bytes"],
                h["device_path_ratio"],
                "<= %.2f" % per_message.TARGET_ALLOC,
                mark(h["device_path_ratio"] <= per_message.TARGET_ALLOC),
            )
        )
    return rows


def issue15_rows(r):
    """The rows of issue 15's target table, in its order, plus the emulated RP2040's."""
    rows = at_rest_rows(r) + full_cycle_rows(r) + backlog_rows(r) + deployed_rows(r)
    rows += alloc_rows(r)
    rows += [tuple(x) for x in r.get("rp2_rows", [])]
    return rows
