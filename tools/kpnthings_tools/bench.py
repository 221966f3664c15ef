"""`make bench`: wire bytes, CPU, heap, flash and connections, each beside its baseline.

Every figure is measured in this run, on the MicroPython unix port, loading the .mpy files that
mpy-cross builds for the boards (xtensawin). The baseline is the library a user would otherwise
pick: micropython-senml (KPN's SenML library as published in micropython-lib), compiled the same
way, with a stand-in for the cbor2 module it imports at the top level. Figures are reported as
ratios against that baseline; nothing here fails on speed.

    python -m kpnthings_tools.bench [--json PATH] [--arch xtensawin|armv6m]
"""

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from kpnthings import auth

from . import build, emulator, provision

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
OUT = ROOT / "build" / "bench"
MICROPYTHON = str(Path(sys.executable).parent / "micropython")

# Targets from the benchmark issue (as fractions of the baseline, or absolute bytes).
TARGET_SINGLE = 0.92
TARGET_BATCH = 0.80
TARGET_CPU = 0.5
TARGET_FULL_CYCLE_HEAP = 32 * 1024
TARGET_FLASH = 24 * 1024

# The modules a board needs for the default HTTPS path (app and wiring are the firmware that
# main.py starts); MQTT and sensor drivers are deployed with the rest of lib/ but only imported
# when config.json asks for them.
CORE_MODULES = (
    "__init__",
    "app",
    "auth",
    "backoff",
    "batch",
    "client",
    "clock",
    "compat",
    "config",
    "device",
    "downlink",
    "http_client",
    "outbox",
    "senml",
    "watchdog",
    "wifi",
    "wiring",
)

CPU_ROUNDS = 3

SAMPLE_EVERY_S = 60
FLUSH_EVERY_S = 600


def _baseline_dir():
    # micropython-senml, a dev dependency; found, not imported (it imports cbor2 at the top).
    import importlib.util

    spec = importlib.util.find_spec("senml")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("micropython-senml is not installed: run `make bench`")
    return Path(next(iter(spec.submodule_search_locations)))


def build_trees(arch):
    """.mpy trees for ours and for the baseline; returns (ours_dir, baseline_dir, ours_sizes)."""
    ours = OUT / "ours" / arch
    sizes = build.compile_lib(arch, ours)
    for board in ("__init__", "unix"):
        build.compile_file(
            ROOT / "boards" / (board + ".py"), ours / "boards" / (board + ".mpy"), arch
        )
    base = OUT / "baseline" / arch
    for src in sorted(_baseline_dir().glob("*.py")):
        build.compile_file(src, base / "senml" / (src.stem + ".mpy"), arch)
    build.compile_file(BENCH / "stubs" / "cbor2.py", base / "cbor2.mpy", arch)
    # The host stand-ins for built-in modules (machine, network) load as .mpy too: on a board
    # they live in the firmware and cost no heap, while compiling them from .py here would
    # put tens of KB of compiler heap into the full-cycle figure.
    fakes = OUT / "fakes" / arch
    for src in sorted((ROOT / "tests" / "fakes").glob("*.py")):
        build.compile_file(src, fakes / (src.stem + ".mpy"), arch)
    return ours, base, sizes


def run_mp(path_dirs, *args, heapsize=None, env_extra=None, cwd=ROOT, timeout=300):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([str(p) for p in path_dirs] + [".frozen"])
    env.update(env_extra or {})
    cmd = [MICROPYTHON]
    if heapsize:
        cmd += ["-X", "heapsize=%d" % heapsize]
    proc = subprocess.run(
        cmd + [str(a) for a in args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc


def mp_json(path_dirs, *args):
    proc = run_mp(path_dirs, BENCH / "mp_bench.py", *args)
    if proc.returncode != 0:
        raise SystemExit("bench script failed:\n" + proc.stdout + proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- wire bytes ------------------------------------------------------------------------------


def _float_text(x):
    return repr(x)  # CPython's repr is the shortest text that reads back to the same double


def minimal_encoding(rows):
    """The smallest compact JSON for these rows, built independently of kpnthings.senml: no white
    space, shortest floats, keys in SenML order, integer times relative to bt (0 left out), and
    the base fields in the first measurement's record rather than a record of their own."""
    parts = []
    rows = [rows[0] + rows[1]] + rows[2:]
    for row in rows:
        fields = []
        for k, v in row:
            if isinstance(v, str):
                fields.append('"%s":%s' % (k, json.dumps(v)))
            elif isinstance(v, float):
                fields.append('"%s":%s' % (k, _float_text(v)))
            else:
                fields.append('"%s":%d' % (k, v))
        parts.append("{" + ",".join(fields) + "}")
    return ("[" + ",".join(parts) + "]").encode()


def reference_rows(single):
    """Rows (ordered key/value pairs) of the reference set, mirroring bench/mp_bench.py."""
    bn = "urn:dev:DVNUUID:5e3a0f7c-1b2d-4c6e-9f80-1234567890ab:"
    bt = 1700000000
    readings = (
        ("temperature", "Cel", 21.5),
        ("humidity", "%RH", 55.3),
        ("batteryVoltage", "V", 3.71),
    )
    if single:
        return [[("bn", bn), ("bt", bt)]] + [[("n", n), ("u", u), ("v", v)] for n, u, v in readings]
    rows = [[("bn", bn), ("bt", bt)]]
    for c in range(10):
        for i, (n, u, v) in enumerate(readings):
            row = [("n", n), ("u", u), ("v", round(v + (c * (i + 1)) * 0.1, 2))]
            if c:
                row.append(("t", c * 60))
            rows.append(row)
    return rows


class _Capture(threading.Thread):
    """A one-shot HTTP server on 127.0.0.1 that records the raw request bytes."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.data = b""

    def run(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(5)
            while b"\r\n\r\n" not in self.data:
                self.data += conn.recv(4096)
            head, _, rest = self.data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(rest) < length:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                rest += chunk
                self.data += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.sock.close()


def request_bytes(body):
    """Total bytes of the HTTP request our client sends for `body` (headers included), measured
    on the wire against a local socket; the Host header is normalised to KPN's host name."""
    from kpnthings.client import Client

    cap = _Capture()
    cap.start()
    uuid = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
    client = Client(uuid, "72J3wD2bd49jnMI8S31j2L3vZldH3rSS", "http://127.0.0.1:%d" % cap.port)
    try:
        client.send(body)
    finally:
        client.close()
    cap.join(5)
    local_host = b"127.0.0.1:%d" % cap.port
    return len(cap.data) - len(local_host) + len(b"prod.dm.kpnthings.com")


def measure_wire(ours_dir, base_dir):
    ours = mp_json([ours_dir], "ours", "wire")
    base = mp_json([base_dir], "baseline", "wire")
    single_min = minimal_encoding(reference_rows(True))
    batch_min = minimal_encoding(reference_rows(False))
    # The token each side sends must be the one KPN computes over exactly those bytes.
    secret = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
    assert ours["token"] == auth.message_token(ours["pack_single"], secret)
    out = {}
    for key, minimal in (("single", single_min), ("batch", batch_min)):
        o, b = ours[key].encode(), base[key].encode()
        out[key] = {
            "ours": len(o),
            "micropython_senml": len(b),
            "json_dumps": len(base["json_dumps_" + key].encode()),
            "minimal": len(minimal),
            "ours_equals_minimal": o == minimal,
            "ratio": round(len(o) / len(b), 3),
            "request_ours": request_bytes(o),
            "request_micropython_senml": request_bytes(b),
        }
    out["single"]["target"] = TARGET_SINGLE
    out["batch"]["target"] = TARGET_BATCH
    out["single"]["pack_encode"] = len(ours["pack_single"].encode())
    out["samples"] = {
        "ours_single": ours["single"],
        "ours_pack_single": ours["pack_single"],
        "micropython_senml_single": base["single"],
    }
    return out


# ---- CPU and heap ------------------------------------------------------------------------------


def measure_cpu_heap(ours_dir, base_dir):
    # Alternate the two a few times and keep each one's best: a busy machine slows whichever
    # runs during the busy moment, and a single pair would put that into the ratio.
    cpu_o = cpu_b = cpu_d = None
    for _ in range(CPU_ROUNDS):
        o = mp_json([ours_dir], "ours", "cpu")
        b = mp_json([base_dir], "baseline", "cpu")["us_per_message"]
        cpu_o = o["us_per_message"] if cpu_o is None else min(cpu_o, o["us_per_message"])
        cpu_d = o["us_device_path"] if cpu_d is None else min(cpu_d, o["us_device_path"])
        cpu_b = b if cpu_b is None else min(cpu_b, b)
    heap_o = mp_json([ours_dir], "ours", "heap")
    heap_b = mp_json([base_dir], "baseline", "heap")
    return {
        "cpu": {
            "ours_us": round(cpu_o, 1),
            "micropython_senml_us": round(cpu_b, 1),
            "ratio": round(cpu_o / cpu_b, 3),
            "target": TARGET_CPU,
            "device_path_us": round(cpu_d, 1),
        },
        "heap": {
            "ours_bytes": heap_o["bytes_per_message"],
            "micropython_senml_bytes": heap_b["bytes_per_message"],
            "micropython_senml_build_to_json_bytes": heap_b["bytes_build_to_json"],
            "ratio": round(heap_o["bytes_per_message"] / heap_b["bytes_build_to_json"], 3),
            "device_path_bytes": heap_o["bytes_device_path"],
        },
    }


# ---- one full cycle in the smallest heap -----------------------------------------------------


def _full_cycle_ok(ours_dir, heapsize, rom=None):
    """One firmware cycle on the unix port with `heapsize` bytes of heap: read, queue, encode,
    sign, POST to the emulator, parse the queued downlink, apply it to the simulated pin.
    With `rom` (a ROMFS image file) the modules are imported from it, bytecode in place."""
    ident = provision.new_identity()
    with tempfile.TemporaryDirectory() as tmp:
        emu = emulator.Emulator(":memory:", devices=[(ident.dvnuuid, ident.secret)])
        server = emu.serve()
        try:
            emu.queue_downlink(ident.dvnuuid, b'[{"n":"led","vb":true}]')
            cfg = {
                "dvnuuid": ident.dvnuuid,
                "secret": ident.secret,
                "url": server.url,
                "board": "unix",
                "interval_s": 1,
                "cycles": 1,
                "timeout_s": 5,
            }
            path = Path(tmp) / "config.json"
            path.write_text(json.dumps(cfg))
            env = {"KPN_CONFIG": str(path)}
            if rom is None:
                dirs = [OUT / "fakes" / ours_dir.name, ours_dir, ROOT / "firmware"]
                script = ROOT / "firmware" / "main.py"
            else:
                dirs, script = [], BENCH / "romfs_main.py"
                env["ROM_IMG"] = str(rom)
            proc = run_mp(dirs, script, heapsize=heapsize, env_extra=env, cwd=tmp, timeout=60)
            accepted = [m for m in emu.messages(ident.dvnuuid) if m.get("outcome") == "accepted"]
            ok = proc.returncode == 0 and bool(accepted) and "[pin] LED -> 1" in proc.stdout
            return ok, proc
        finally:
            server.shutdown()


# Success is not monotonic in the heap size: where the garbage collector runs, and so how the
# heap fragments, changes with the size, and a cycle can pass at N bytes and fail at N + 4 KB.
# The figure reported is the smallest size from which every size up to STABLE_SPAN above it
# passes too (probed every STABLE_STEP); the plain bisection result is kept beside it.
STABLE_STEP = 1024
STABLE_SPAN = 16 * 1024


def measure_full_cycle(ours_dir, rom=None):
    lo, hi = 4 * 1024, 256 * 1024
    ok, proc = _full_cycle_ok(ours_dir, hi, rom)
    if not ok:
        return {
            "error": "full cycle fails even with %d bytes:\n%s" % (hi, proc.stdout + proc.stderr)
        }
    while hi - lo > 512:
        mid = (lo + hi) // 2 // 256 * 256
        if _full_cycle_ok(ours_dir, mid, rom)[0]:
            hi = mid
        else:
            lo = mid
    bisected = stable = hi
    size = hi + STABLE_STEP
    while size <= stable + STABLE_SPAN and size < 256 * 1024:
        if not _full_cycle_ok(ours_dir, size, rom)[0]:
            stable = size + STABLE_STEP  # a failure above: the stable range starts higher
        size += STABLE_STEP
    out = {
        "min_heap_bytes": stable,
        "first_pass_bytes": bisected,
        "target": TARGET_FULL_CYCLE_HEAP,
        "resolution": STABLE_STEP,
    }
    if rom is not None:
        # The image stands in for flash: only the heap beside it counts.
        out["image_bytes"] = Path(rom).stat().st_size
        out["min_heap_bytes"] = stable - out["image_bytes"]
    return out


def romfs_image(ours_dir):
    """A ROMFS image (as `mpremote romfs build` makes) of the .mpy tree and the board stand-ins:
    what a board with a ROMFS partition imports with its bytecode left in flash, which is also
    close to what a frozen firmware build keeps out of the heap."""
    from mpremote.romfs import make_romfs

    tree = OUT / "romfs" / ours_dir.name
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(ours_dir, tree)
    for mpy in (OUT / "fakes" / ours_dir.name).glob("*.mpy"):
        shutil.copy(mpy, tree / mpy.name)
    image = OUT / "romfs" / (ours_dir.name + ".img")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the whole tree
        image.write_bytes(make_romfs(str(tree), mpy_cross=False))
    return image


# ---- flash and connections -------------------------------------------------------------------


def measure_flash():
    out = {}
    for arch in build.ARCHS:
        sizes = build.compile_lib(arch, OUT / "flash" / arch)
        per = {}
        for src, _mpy, size in sizes:
            rel = Path(src).relative_to(ROOT / "lib" / "kpnthings")
            per[str(rel.with_suffix(""))] = size
        core = sum(v for k, v in per.items() if k in CORE_MODULES)
        out[arch] = {"modules": per, "total": sum(per.values()), "core_https": core}
    out["target"] = TARGET_FLASH
    out["core_modules"] = list(CORE_MODULES)
    return out


def measure_connections(wire):
    per_hour_samples = 3600 // SAMPLE_EVERY_S
    flushes = 3600 // FLUSH_EVERY_S
    per_flush = FLUSH_EVERY_S // SAMPLE_EVERY_S  # cycles per batch (10 = the reference batch)
    assert per_flush == 10, "the reference batch is 10 cycles"
    return {
        "schedule": "sample every %d s, flush every %d s" % (SAMPLE_EVERY_S, FLUSH_EVERY_S),
        "batched": {
            "tls_handshakes_per_hour": flushes,
            "request_bytes_per_hour": flushes * wire["batch"]["request_ours"],
        },
        "one_request_per_reading_set": {
            "tls_handshakes_per_hour": per_hour_samples,
            "request_bytes_per_hour": per_hour_samples * wire["single"]["request_ours"],
        },
        "micropython_senml_one_request_each": {
            "tls_handshakes_per_hour": per_hour_samples,
            "request_bytes_per_hour": per_hour_samples
            * wire["single"]["request_micropython_senml"],
        },
    }


# ---- report ----------------------------------------------------------------------------------


def _mark(ok):
    return "met" if ok else "NOT met"


def table(r):
    w, c, h, f = r["wire"], r["cpu_heap"]["cpu"], r["cpu_heap"]["heap"], r["flash"]
    rows = [
        ("figure", "ours", "baseline", "ratio", "target", ""),
        (
            "wire: single message body (B)",
            w["single"]["ours"],
            w["single"]["micropython_senml"],
            w["single"]["ratio"],
            "<= %.2f" % TARGET_SINGLE,
            _mark(w["single"]["ratio"] <= TARGET_SINGLE),
        ),
        (
            "wire: batch 10 x 3 body (B)",
            w["batch"]["ours"],
            w["batch"]["micropython_senml"],
            w["batch"]["ratio"],
            "<= %.2f" % TARGET_BATCH,
            _mark(w["batch"]["ratio"] <= TARGET_BATCH),
        ),
        (
            "wire: single, Pack.encode (base record apart)",
            w["single"]["pack_encode"],
            w["single"]["micropython_senml"],
            round(w["single"]["pack_encode"] / w["single"]["micropython_senml"], 3),
            "<= %.2f" % TARGET_SINGLE,
            _mark(w["single"]["pack_encode"] / w["single"]["micropython_senml"] <= TARGET_SINGLE),
        ),
        (
            "wire: single vs json.dumps defaults (B)",
            w["single"]["ours"],
            w["single"]["json_dumps"],
            round(w["single"]["ours"] / w["single"]["json_dumps"], 3),
            "",
            "",
        ),
        (
            "wire: batch vs json.dumps defaults (B)",
            w["batch"]["ours"],
            w["batch"]["json_dumps"],
            round(w["batch"]["ours"] / w["batch"]["json_dumps"], 3),
            "",
            "",
        ),
        (
            "wire: single vs smallest compact (B)",
            w["single"]["ours"],
            w["single"]["minimal"],
            round(w["single"]["ours"] / w["single"]["minimal"], 3),
            "= 1.00",
            _mark(w["single"]["ours_equals_minimal"]),
        ),
        (
            "wire: batch vs smallest compact (B)",
            w["batch"]["ours"],
            w["batch"]["minimal"],
            round(w["batch"]["ours"] / w["batch"]["minimal"], 3),
            "= 1.00",
            _mark(w["batch"]["ours_equals_minimal"]),
        ),
        (
            "wire: single HTTP request (B)",
            w["single"]["request_ours"],
            w["single"]["request_micropython_senml"],
            round(w["single"]["request_ours"] / w["single"]["request_micropython_senml"], 3),
            "",
            "",
        ),
        (
            "wire: batch HTTP request (B)",
            w["batch"]["request_ours"],
            w["batch"]["request_micropython_senml"],
            round(w["batch"]["request_ours"] / w["batch"]["request_micropython_senml"], 3),
            "",
            "",
        ),
        (
            "CPU: build+encode+sign (us/msg)",
            c["ours_us"],
            c["micropython_senml_us"],
            c["ratio"],
            "<= %.2f" % TARGET_CPU,
            _mark(c["ratio"] <= TARGET_CPU),
        ),
        (
            "heap: allocated per message (B)",
            h["ours_bytes"],
            h["micropython_senml_build_to_json_bytes"],
            h["ratio"],
            "<= 1.00",
            _mark(h["ratio"] <= 1.0),
        ),
        (
            "CPU: firmware path, batch.build_pack+sign (us/msg)",
            c["device_path_us"],
            c["micropython_senml_us"],
            round(c["device_path_us"] / c["micropython_senml_us"], 3),
            "",
            "",
        ),
        (
            "heap: firmware path, allocated per message (B)",
            h["device_path_bytes"],
            h["micropython_senml_build_to_json_bytes"],
            round(h["device_path_bytes"] / h["micropython_senml_build_to_json_bytes"], 3),
            "",
            "",
        ),
    ]
    fc = r["full_cycle"]
    if "min_heap_bytes" in fc:
        rows.append(
            (
                "heap: smallest -X heapsize, full cycle",
                fc["min_heap_bytes"],
                "",
                "",
                "<= %d" % TARGET_FULL_CYCLE_HEAP,
                _mark(fc["min_heap_bytes"] <= TARGET_FULL_CYCLE_HEAP),
            )
        )
    else:
        rows.append(("heap: full cycle", "error", "", "", "", "NOT met"))
    fr = r.get("full_cycle_romfs", {})
    if "min_heap_bytes" in fr:
        rows.append(
            (
                "heap: same, bytecode in place (ROMFS; frozen is lower still)",
                fr["min_heap_bytes"],
                "",
                "",
                "<= %d" % TARGET_FULL_CYCLE_HEAP,
                _mark(fr["min_heap_bytes"] <= TARGET_FULL_CYCLE_HEAP),
            )
        )
    for arch in build.ARCHS:
        rows.append(
            (
                "flash: .mpy total, %s (B)" % arch,
                f[arch]["total"],
                "",
                "",
                "<= %d" % TARGET_FLASH,
                _mark(f[arch]["total"] <= TARGET_FLASH),
            )
        )
        rows.append(
            (
                "flash: .mpy HTTPS core, %s (B)" % arch,
                f[arch]["core_https"],
                "",
                "",
                "<= %d" % TARGET_FLASH,
                _mark(f[arch]["core_https"] <= TARGET_FLASH),
            )
        )
    cn = r["connections"]
    rows.append(
        (
            "TLS handshakes per hour",
            cn["batched"]["tls_handshakes_per_hour"],
            cn["one_request_per_reading_set"]["tls_handshakes_per_hour"],
            round(
                cn["batched"]["tls_handshakes_per_hour"]
                / cn["one_request_per_reading_set"]["tls_handshakes_per_hour"],
                3,
            ),
            "",
            "",
        )
    )
    rows.append(
        (
            "request bytes per hour",
            cn["batched"]["request_bytes_per_hour"],
            cn["one_request_per_reading_set"]["request_bytes_per_hour"],
            round(
                cn["batched"]["request_bytes_per_hour"]
                / cn["one_request_per_reading_set"]["request_bytes_per_hour"],
                3,
            ),
            "",
            "",
        )
    )
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
        if i == 0:
            lines.append("|" + "---|" * len(row))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="kpnthings-bench", description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=str(OUT / "results.json"), help="where to write the JSON")
    ap.add_argument("--arch", default="xtensawin", choices=build.ARCHS)
    ap.add_argument("--skip-full-cycle", action="store_true", help="skip the heap bisection")
    args = ap.parse_args(argv)

    ours_dir, base_dir, _ = build_trees(args.arch)
    results = {"arch_loaded": args.arch, "runtime": "MicroPython unix port"}
    print("wire bytes ...", flush=True)
    results["wire"] = measure_wire(ours_dir, base_dir)
    print("CPU and heap ...", flush=True)
    results["cpu_heap"] = measure_cpu_heap(ours_dir, base_dir)
    if args.skip_full_cycle:
        results["full_cycle"] = {"error": "skipped"}
    else:
        print("smallest heap for one full cycle ...", flush=True)
        results["full_cycle"] = measure_full_cycle(ours_dir)
        results["full_cycle_romfs"] = measure_full_cycle(ours_dir, romfs_image(ours_dir))
    results["flash"] = measure_flash()
    results["connections"] = measure_connections(results["wire"])
    results["table"] = table(results)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, sort_keys=True))
    print()
    print(results["table"])
    print()
    print("JSON: %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
