"""The smallest heap for one full cycle of the real firmware: boot, sense, pack, sign, POST,
downlink applied, outbox committed.

- over verified HTTPS (EC or RSA-2048 chain) on the 32-bit runtimes: the ESP32 model
  (micropython32-stock) and the Pico W model (micropython32, mbedTLS in the heap);
- over plain HTTP on the 64-bit port, as `make bench` has always measured it, and the same with
  the bytecode in place (a ROMFS image), which stays beside.
"""

import contextlib
import io
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import emulator, provision
from . import firmware_run, heap_search, runtimes, trees

TARGET_ESP32 = 48 * 1024
TARGET_PICOW = 80 * 1024
TARGET_64BIT = 32 * 1024  # the figure's historical target, kept for the 64-bit rows


def cycle_ok(runtime, arch, heapsize, chain=None, board=None):
    """(passed, output): one cycle accepted by the emulator, the queued downlink applied to the
    simulated LED, and nothing left queued in the outbox (the ack was committed)."""
    config = {"board": board} if board else None
    run = firmware_run.run_firmware(
        runtime,
        arch,
        heapsize=heapsize,
        chain=chain,
        downlink=firmware_run.DOWNLINK_LED_ON,
        config=config,
    )
    ok = (
        run.proc is not None
        and run.proc.returncode == 0
        and bool(run.accepted)
        and "[pin] LED -> 1" in run.stdout
        and run.left == 0
    )
    return ok, run.stdout


def baseline_ok(runtime, arch, heapsize, chain):
    """(passed, output): the baseline's cycle (bench/baseline_cycle.py: micropython-senml and a
    verified TLS POST) accepted by the emulator, with the queued downlink decoded."""
    ident = provision.new_identity()
    emu = emulator.Emulator(":memory:", devices=[(ident.dvnuuid, ident.secret)], log=_quiet)
    server = emu.serve(tls_cert=str(chain.cert), tls_key=str(chain.key))
    try:
        emu.queue_downlink(ident.dvnuuid, firmware_run.DOWNLINK_LED_ON)
        env = {
            "KPN_BENCH_URL": server.url,
            "KPN_BENCH_UUID": ident.dvnuuid,
            "KPN_BENCH_SECRET": ident.secret,
            "KPN_BENCH_CA": str(chain.ca_der),
        }
        try:
            proc = runtimes.run(
                runtime,
                [trees.baseline(arch)],
                "-c",
                "import baseline_cycle",  # its .mpy, as the firmware's modules are loaded
                heapsize=heapsize,
                env_extra=env,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            return False, "timed out"
        accepted = [m for m in emu.messages(ident.dvnuuid) if m["outcome"] == "accepted"]
        ok = proc.returncode == 0 and bool(accepted) and "@@BASELINE 200 True" in proc.stdout
        return ok, proc.stdout + proc.stderr
    finally:
        server.shutdown()


def measure_https(runtime, arch, chain):
    """Smallest stable heap for one full cycle over HTTPS verified against `chain`."""
    out = heap_search.smallest_stable_heap(lambda size: cycle_ok(runtime, arch, size, chain))
    out.update({"runtime": runtime.name, "chain": chain.name, "tls": "verified"})
    base = heap_search.smallest_stable_heap(lambda size: baseline_ok(runtime, arch, size, chain))
    out["baseline"] = base
    if "min_heap_bytes" in base:
        out["baseline_bytes"] = base["min_heap_bytes"]
    return out


def measure_models(runtime, arch, chains, target):
    """One runtime, every chain; the figure is the larger (the chain a board must cope with)."""
    per = {name: measure_https(runtime, arch, chain) for name, chain in chains.items()}
    sizes = [r["min_heap_bytes"] for r in per.values() if "min_heap_bytes" in r]
    out = {"runtime": runtime.name, "chains": per, "target": target}
    if len(sizes) == len(per):
        out["min_heap_bytes"] = max(sizes)
        out["worst_chain"] = max(per, key=lambda n: per[n]["min_heap_bytes"])
    base = [r["baseline_bytes"] for r in per.values() if "baseline_bytes" in r]
    if len(base) == len(per):
        out["baseline_bytes"] = max(base)
    return out


# ---- the 64-bit plain-HTTP figure, as before -----------------------------------------------


def _full_cycle_ok(ours_dir, heapsize, rom=None):
    """One firmware cycle on the 64-bit unix port with `heapsize` bytes of heap, plain HTTP:
    read, queue, encode, sign, POST to the emulator, parse the queued downlink, apply it to the
    simulated pin. With `rom` (a ROMFS image file) the modules are imported from it, bytecode
    in place."""
    if rom is None:
        return cycle_ok(runtimes.MP64, Path(ours_dir).name, heapsize, board="unix")
    ident = provision.new_identity()
    with tempfile.TemporaryDirectory() as tmp:
        emu = emulator.Emulator(":memory:", devices=[(ident.dvnuuid, ident.secret)], log=_quiet)
        server = emu.serve()
        try:
            emu.queue_downlink(ident.dvnuuid, firmware_run.DOWNLINK_LED_ON)
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
            env = {"KPN_CONFIG": str(path), "ROM_IMG": str(rom)}
            try:
                proc = runtimes.run(
                    runtimes.MP64,
                    [],
                    trees.BENCH / "romfs_main.py",
                    heapsize=heapsize,
                    env_extra=env,
                    cwd=tmp,
                    timeout=60,
                )
            except subprocess.TimeoutExpired:
                return False, "timed out"
            accepted = [m for m in emu.messages(ident.dvnuuid) if m["outcome"] == "accepted"]
            ok = proc.returncode == 0 and bool(accepted) and "[pin] LED -> 1" in proc.stdout
            return ok, proc.stdout + proc.stderr
        finally:
            server.shutdown()


def measure_full_cycle(ours_dir, rom=None):
    """The 64-bit figure: smallest stable heap for one plain-HTTP cycle (see heap_search)."""
    out = heap_search.smallest_stable_heap(lambda size: _full_cycle_ok(ours_dir, size, rom))
    if "error" in out:
        return out
    out["target"] = TARGET_64BIT
    if rom is not None:
        # The image stands in for flash: only the heap beside it counts.
        out["image_bytes"] = Path(rom).stat().st_size
        out["min_heap_bytes"] -= out["image_bytes"]
    return out


def romfs_image(ours_dir):
    """A ROMFS image (as `mpremote romfs build` makes) of the .mpy tree and the board stand-ins:
    what a board with a ROMFS partition imports with its bytecode left in flash, which is also
    close to what a frozen firmware build keeps out of the heap."""
    from mpremote.romfs import make_romfs

    arch = Path(ours_dir).name
    tree = trees.OUT / "romfs" / arch
    if tree.exists():
        shutil.rmtree(tree)
    shutil.copytree(ours_dir, tree)
    for mpy in trees.fakes(arch).glob("*.mpy"):
        shutil.copy(mpy, tree / mpy.name)
    image = trees.OUT / "romfs" / (arch + ".img")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the whole tree
        image.write_bytes(make_romfs(str(tree), mpy_cross=False))
    return image


def _quiet(line):
    pass
