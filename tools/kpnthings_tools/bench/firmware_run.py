"""One run of the real firmware (firmware/main.py -> kpnthings.app) on a unix port, against a
fresh local emulator (HTTP, or HTTPS with a test chain), with the bench board.

Everything the firmware gets is what a user gives it: config.json (with ca_file beside it, as
DER), and the .mpy tree; the outbox lives beside config.json, where the firmware puts it.
"""

import json
import shutil
import subprocess
import tempfile
from collections import namedtuple
from pathlib import Path

from .. import emulator, provision
from . import runtimes, trees

# proc: the CompletedProcess (None after a timeout); accepted: the emulator's accepted messages;
# left: readings still queued in the outbox afterwards (None when there is no outbox folder)
Run = namedtuple("Run", "proc accepted left stdout")

DOWNLINK_LED_ON = b'[{"n":"led","vb":true}]'


def backlog_records(count, t0=1700000000):
    """`count` readings like the unix board's, a cycle a minute apart, oldest first."""
    kinds = (("temperature", "Cel", 21.5), ("humidity", "%RH", 45.0), ("batteryVoltage", "V", 3.7))
    out = []
    for i in range(count):
        n, u, v = kinds[i % 3]
        out.append({"n": n, "u": u, "v": round(v + (i % 7) * 0.1, 2), "t": t0 + (i // 3) * 60})
    return out


def prefill_outbox(folder, records, max_bytes):
    """Write `records` into an outbox at `folder` with the device's own Outbox class (its format
    is little-endian struct packing and CRC-32, byte for byte the same under CPython)."""
    from kpnthings.outbox import Outbox

    box = Outbox(str(folder), max_bytes=max_bytes)
    for rec in records:
        box.append(rec)
    if len(box) != len(records):
        raise RuntimeError(
            "outbox holds %d of %d readings: raise max_bytes" % (len(box), len(records))
        )


def outbox_left(folder):
    """Readings still queued in the outbox at `folder`, read with the device's Outbox class."""
    from kpnthings.outbox import Outbox

    if not Path(folder).is_dir():
        return None
    return len(Outbox(str(folder), max_bytes=1 << 20))


def run_firmware(
    runtime,
    arch,
    heapsize=None,
    chain=None,
    cycles=1,
    downlink=None,
    prefill=None,
    config=None,
    env_extra=None,
    timeout=60,
    ca_der=None,
):
    """Run the firmware once; returns a Run.

    chain: a pki.Chain (HTTPS, verified against chain.ca_der, or `ca_der` when given), else HTTP.
    prefill: readings written into the outbox before boot. config: extra config.json keys.
    """
    ident = provision.new_identity()
    emu = emulator.Emulator(":memory:", devices=[(ident.dvnuuid, ident.secret)], log=_quiet)
    if chain is not None:
        server = emu.serve(tls_cert=str(chain.cert), tls_key=str(chain.key))
    else:
        server = emu.serve()
    try:
        if downlink:
            emu.queue_downlink(ident.dvnuuid, downlink)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = {
                "dvnuuid": ident.dvnuuid,
                "secret": ident.secret,
                "url": server.url,
                "board": trees.BENCH_BOARD,
                "interval_s": 1,
                "cycles": cycles,
                "timeout_s": 5,
            }
            if chain is not None:
                shutil.copy(ca_der or chain.ca_der, Path(tmp) / "ca.der")
                cfg["ca_file"] = "ca.der"  # relative to config.json, as on a board
            cfg.update(config or {})
            path = Path(tmp) / "config.json"
            path.write_text(json.dumps(cfg))
            outbox = Path(tmp) / "outbox"
            if prefill:
                prefill_outbox(outbox, prefill, cfg.get("outbox_max_bytes") or 32768)
            env = {"KPN_CONFIG": str(path)}
            env.update(env_extra or {})
            try:
                proc = runtimes.run(
                    runtime,
                    board_like_path(tmp, arch),
                    "main.py",
                    heapsize=heapsize,
                    env_extra=env,
                    cwd=tmp,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired as e:
                out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else ""
                return Run(None, [], None, (out or "") + "\n[bench] timed out")
            left = outbox_left(outbox)
        accepted = [
            m for m in emu.messages(ident.dvnuuid, limit=1000) if m["outcome"] == "accepted"
        ]
        return Run(proc, accepted, left, proc.stdout + proc.stderr)
    finally:
        server.shutdown()


def board_like_path(folder, arch):
    """MICROPYPATH for the firmware run in `folder`, with paths as short as a board's: the
    trees are linked in as lib, b (the bench board) and f (the stand-ins), and main.py and
    boot.py copied, as on a board's flash. A module's path stays interned for good once it is
    imported (its __file__), so the checkout's absolute paths would add some 700 B to every
    heap figure, more or less by where the repository was cloned."""
    folder = Path(folder)
    for name, target in (("f", trees.fakes(arch)), ("b", trees.bench_board(arch))):
        (folder / name).symlink_to(target, target_is_directory=True)
    (folder / "lib").symlink_to(trees.ours(arch), target_is_directory=True)
    for name in ("main.py", "boot.py"):
        shutil.copy(trees.ROOT / "firmware" / name, folder / name)
    return ["f", "b", "lib"]


def _quiet(line):
    pass
