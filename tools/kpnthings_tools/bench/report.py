"""The tables `make bench` prints, in the README's markdown shape: figure | ours | baseline |
ratio | target | met. Each 32-bit figure of issue 15 is followed by the same figure on the 64-bit
port; a figure whose runtime is not there says so instead of a number."""

from .. import build
from . import at_rest, backlog, flash, full_cycle, per_message, wire

HEADER = ("figure", "ours", "baseline", "ratio", "target", "")
NOT_MEASURED = "not measured"


def _mark(ok):
    return "met" if ok else "NOT met"


def _ratio(a, b):
    return round(a / b, 3) if b else ""


def markdown(rows):
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
        if i == 0:
            lines.append("|" + "---|" * len(row))
    return "\n".join(lines)


def _absent(label, why):
    return (label, why, "", "", "", NOT_MEASURED)


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
            rows.append(_absent(label + " (B)", "runtime not set"))
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
                _ratio(value, b) if b else "",
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
                    _ratio(board, b) if b else "",
                    "<= %d" % at_rest.TARGET if is_32 else "",
                    _mark(board <= at_rest.TARGET) if is_32 else "",
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
                _absent(
                    title, _missing(r) if key in r.get("have_models", ()) else "runtime not set"
                )
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
                _ratio(fig["min_heap_bytes"], base) if base else "",
                "<= %d" % target,
                _mark(fig["min_heap_bytes"] <= target),
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
                _absent(title, _missing(r) if key in r["runtimes_present"] else "runtime not set")
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
                _ratio(fig["drain_bytes"], fig["one_pack_bytes"]),
                "<= one pack + %d" % backlog.TARGET_DIFF,
                _mark(fig["diff_bytes"] <= backlog.TARGET_DIFF),
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
                _ratio(ours, base) if base else "",
                "<= %d" % flash.TARGET_DEPLOYED,
                _mark(ours <= flash.TARGET_DEPLOYED),
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
            rows.append(_absent(title, "runtime not set"))
            continue
        rows.append(
            (
                title + " (B)",
                h["device_path_bytes"],
                h["micropython_senml_build_to_json_bytes"],
                h["device_path_ratio"],
                "<= %.2f" % per_message.TARGET_ALLOC,
                _mark(h["device_path_ratio"] <= per_message.TARGET_ALLOC),
            )
        )
    return rows


def issue15_rows(r):
    """The rows of issue 15's target table, in its order, plus the emulated RP2040's."""
    rows = at_rest_rows(r) + full_cycle_rows(r) + backlog_rows(r) + deployed_rows(r)
    rows += alloc_rows(r)
    rows += [tuple(x) for x in r.get("rp2_rows", [])]
    return rows


def earlier_rows(r):
    """Every figure `make bench` printed before issue 15, except the ones moved up."""
    w, c, h, f = r["wire"], r["cpu_heap"]["cpu"], r["cpu_heap"]["heap"], r["flash"]
    rows = [
        (
            "wire: single message body (B)",
            w["single"]["ours"],
            w["single"]["micropython_senml"],
            w["single"]["ratio"],
            "<= %.2f" % wire.TARGET_SINGLE,
            _mark(w["single"]["ratio"] <= wire.TARGET_SINGLE),
        ),
        (
            "wire: batch 10 x 3 body (B)",
            w["batch"]["ours"],
            w["batch"]["micropython_senml"],
            w["batch"]["ratio"],
            "<= %.2f" % wire.TARGET_BATCH,
            _mark(w["batch"]["ratio"] <= wire.TARGET_BATCH),
        ),
        (
            "wire: single, Pack.encode (base record apart)",
            w["single"]["pack_encode"],
            w["single"]["micropython_senml"],
            _ratio(w["single"]["pack_encode"], w["single"]["micropython_senml"]),
            "<= %.2f" % wire.TARGET_SINGLE,
            _mark(w["single"]["pack_encode"] / w["single"]["micropython_senml"] <= 0.92),
        ),
        (
            "wire: single vs json.dumps defaults (B)",
            w["single"]["ours"],
            w["single"]["json_dumps"],
            _ratio(w["single"]["ours"], w["single"]["json_dumps"]),
            "",
            "",
        ),
        (
            "wire: batch vs json.dumps defaults (B)",
            w["batch"]["ours"],
            w["batch"]["json_dumps"],
            _ratio(w["batch"]["ours"], w["batch"]["json_dumps"]),
            "",
            "",
        ),
        (
            "wire: single vs smallest compact (B)",
            w["single"]["ours"],
            w["single"]["minimal"],
            _ratio(w["single"]["ours"], w["single"]["minimal"]),
            "= 1.00",
            _mark(w["single"]["ours_equals_minimal"]),
        ),
        (
            "wire: batch vs smallest compact (B)",
            w["batch"]["ours"],
            w["batch"]["minimal"],
            _ratio(w["batch"]["ours"], w["batch"]["minimal"]),
            "= 1.00",
            _mark(w["batch"]["ours_equals_minimal"]),
        ),
        (
            "wire: single HTTP request (B)",
            w["single"]["request_ours"],
            w["single"]["request_micropython_senml"],
            _ratio(w["single"]["request_ours"], w["single"]["request_micropython_senml"]),
            "",
            "",
        ),
        (
            "wire: batch HTTP request (B)",
            w["batch"]["request_ours"],
            w["batch"]["request_micropython_senml"],
            _ratio(w["batch"]["request_ours"], w["batch"]["request_micropython_senml"]),
            "",
            "",
        ),
        (
            "CPU (64-bit host): build+encode+sign (us/msg)",
            c["ours_us"],
            c["micropython_senml_us"],
            c["ratio"],
            "<= %.2f" % per_message.TARGET_CPU,
            _mark(c["ratio"] <= per_message.TARGET_CPU),
        ),
        (
            "CPU (64-bit host): firmware path, batch.write_pack+sign (us/msg)",
            c["device_path_us"],
            c["micropython_senml_us"],
            _ratio(c["device_path_us"], c["micropython_senml_us"]),
            "",
            "",
        ),
        (
            "heap: Pack path, allocated per message, 64-bit port (B)",
            h["ours_bytes"],
            h["micropython_senml_build_to_json_bytes"],
            h["ratio"],
            "<= 1.00",
            _mark(h["ratio"] <= 1.0),
        ),
    ]
    for arch in build.ARCHS:
        rows.append(
            (
                "flash: .mpy total, %s (B)" % arch,
                f[arch]["total"],
                "",
                "",
                "<= %d" % flash.TARGET_FLASH,
                _mark(f[arch]["total"] <= flash.TARGET_FLASH),
            )
        )
        rows.append(
            (
                "flash: .mpy HTTPS core (bench's CORE_MODULES), %s (B)" % arch,
                f[arch]["core_https"],
                "",
                "",
                "<= %d" % flash.TARGET_FLASH,
                _mark(f[arch]["core_https"] <= flash.TARGET_FLASH),
            )
        )
    cn = r["connections"]
    for label, key in (
        ("TLS handshakes per hour", "tls_handshakes_per_hour"),
        ("request bytes per hour", "request_bytes_per_hour"),
    ):
        ours, base = cn["batched"][key], cn["one_request_per_reading_set"][key]
        rows.append((label, ours, base, _ratio(ours, base), "", ""))
    return rows


def table(r):
    return markdown([HEADER] + issue15_rows(r) + earlier_rows(r))


def module_table(r):
    """What each module holds once imported: 32-bit (ESP32 model) beside the 64-bit port."""
    mh = r.get("module_heap", {})
    stock = mh.get("micropython32-stock", {})
    host = mh.get("micropython64", {})
    order = host.get("order") or stock.get("order") or []
    deployed = {p for p, _ in r["flash"].get("deployed_set", [])}
    rows = [("module", "micropython32-stock (B)", "64-bit port (B)", "deployed for HTTPS")]
    sums = {"all": [0, 0], "https": [0, 0]}
    for name in order:
        a = stock.get("modules", {}).get(name)
        b = host.get("modules", {}).get(name)
        path = _lib_path(name)
        in_set = path in deployed
        for key in ("all", "https") if in_set else ("all",):
            sums[key][0] += a or 0
            sums[key][1] += b or 0
        err = stock.get("errors", {}).get(name) or host.get("errors", {}).get(name)
        rows.append(
            (
                name + (" (%s)" % err if err else ""),
                a if a is not None else "-",
                b if b is not None else "-",
                "yes" if in_set else "",
            )
        )
    sa = "-" if not stock.get("modules") else None
    rows.append(("total, every module", sa or sums["all"][0], sums["all"][1], ""))
    rows.append(("total, deployed set for HTTPS", sa or sums["https"][0], sums["https"][1], ""))
    base = r.get("baseline_imports", {})
    bs = base.get("micropython32-stock", {})
    bh = base.get("micropython64", {})
    for name in ("senml", "requests"):
        rows.append(
            (
                "baseline: %s" % name,
                bs.get("modules", {}).get(name, "-"),
                bh.get("modules", {}).get(name, "-"),
                "",
            )
        )
    return markdown(rows)


def _lib_path(module):
    """kpnthings.sensors -> kpnthings/sensors/__init__.py; kpnthings.auth -> kpnthings/auth.py."""
    from .module_heap import LIB

    rel = module.replace(".", "/")
    if (LIB / rel / "__init__.py").exists():
        return rel + "/__init__.py"
    return rel + ".py"
