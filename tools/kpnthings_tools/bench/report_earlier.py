"""The figures `make bench` printed before issue 15: wire bytes, CPU and heap per message on the
64-bit host, .mpy totals and connections per hour."""

from .. import build
from . import flash, per_message, wire
from .table_format import mark, ratio


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
            mark(w["single"]["ratio"] <= wire.TARGET_SINGLE),
        ),
        (
            "wire: batch 10 x 3 body (B)",
            w["batch"]["ours"],
            w["batch"]["micropython_senml"],
            w["batch"]["ratio"],
            "<= %.2f" % wire.TARGET_BATCH,
            mark(w["batch"]["ratio"] <= wire.TARGET_BATCH),
        ),
        (
            "wire: single, Pack.encode (base record apart)",
            w["single"]["pack_encode"],
            w["single"]["micropython_senml"],
            ratio(w["single"]["pack_encode"], w["single"]["micropython_senml"]),
            "<= %.2f" % wire.TARGET_SINGLE,
            mark(w["single"]["pack_encode"] / w["single"]["micropython_senml"] <= 0.92),
        ),
        (
            "wire: single vs json.dumps defaults (B)",
            w["single"]["ours"],
            w["single"]["json_dumps"],
            ratio(w["single"]["ours"], w["single"]["json_dumps"]),
            "",
            "",
        ),
        (
            "wire: batch vs json.dumps defaults (B)",
            w["batch"]["ours"],
            w["batch"]["json_dumps"],
            ratio(w["batch"]["ours"], w["batch"]["json_dumps"]),
            "",
            "",
        ),
        (
            "wire: single vs smallest compact (B)",
            w["single"]["ours"],
            w["single"]["minimal"],
            ratio(w["single"]["ours"], w["single"]["minimal"]),
            "= 1.00",
            mark(w["single"]["ours_equals_minimal"]),
        ),
        (
            "wire: batch vs smallest compact (B)",
            w["batch"]["ours"],
            w["batch"]["minimal"],
            ratio(w["batch"]["ours"], w["batch"]["minimal"]),
            "= 1.00",
            mark(w["batch"]["ours_equals_minimal"]),
        ),
        (
            "wire: single HTTP request (B)",
            w["single"]["request_ours"],
            w["single"]["request_micropython_senml"],
            ratio(w["single"]["request_ours"], w["single"]["request_micropython_senml"]),
            "",
            "",
        ),
        (
            "wire: batch HTTP request (B)",
            w["batch"]["request_ours"],
            w["batch"]["request_micropython_senml"],
            ratio(w["batch"]["request_ours"], w["batch"]["request_micropython_senml"]),
            "",
            "",
        ),
        (
            "CPU (64-bit host): build+encode+sign (us/msg)",
            c["ours_us"],
            c["micropython_senml_us"],
            c["ratio"],
            "<= %.2f" % per_message.TARGET_CPU,
            mark(c["ratio"] <= per_message.TARGET_CPU),
        ),
        (
            "CPU (64-bit host): firmware path, batch.write_pack+sign (us/msg)",
            c["device_path_us"],
            c["micropython_senml_us"],
            ratio(c["device_path_us"], c["micropython_senml_us"]),
            "",
            "",
        ),
        (
            "heap: Pack path, allocated per message, 64-bit port (B)",
            h["ours_bytes"],
            h["micropython_senml_build_to_json_bytes"],
            h["ratio"],
            "<= 1.00",
            mark(h["ratio"] <= 1.0),
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
                mark(f[arch]["total"] <= flash.TARGET_FLASH),
            )
        )
        rows.append(
            (
                "flash: .mpy HTTPS core (bench's CORE_MODULES), %s (B)" % arch,
                f[arch]["core_https"],
                "",
                "",
                "<= %d" % flash.TARGET_FLASH,
                mark(f[arch]["core_https"] <= flash.TARGET_FLASH),
            )
        )
    cn = r["connections"]
    for label, key in (
        ("TLS handshakes per hour", "tls_handshakes_per_hour"),
        ("request bytes per hour", "request_bytes_per_hour"),
    ):
        ours, base = cn["batched"][key], cn["one_request_per_reading_set"][key]
        rows.append((label, ours, base, ratio(ours, base), "", ""))
    return rows
