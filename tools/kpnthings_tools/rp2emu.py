"""Run a Python file on the real MicroPython rp2 firmware (RPI_PICO_W) on an emulated RP2040.

The emulator is not part of this project: the environment variable RP2EMU names its folder, and
`prepare()` (kpnthings_tools.rp2emu_install) keeps a ready-to-run copy of it in build/rp2emu/.

`run()` boots the chip, copies files onto its LittleFS, runs a script through the raw REPL and
returns what it printed, its exit status, the runner's statistics (CPU cycles, flash erases) and
the `@@MARK` lines, each stamped by the runner with the emulated CPU cycles at that point.

    RP2EMU=/path/to/rp2emu python -m kpnthings_tools.rp2emu script.py [--put LOCAL:REMOTE ...]
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

# ENV, _STAMP and source_dir are not used here: the names the tests know.
from .rp2emu_install import (  # noqa: F401
    _STAMP,
    ENV,
    FIRMWARE,
    RUNNER,
    Unavailable,
    prepare,
    require_tool,
    source_dir,
)

# The Pico W's filesystem region (the emulator's README).
FS_OFFSET = 0x12C000
FS_SIZE = 0xD4000
# The runner's own exit statuses (README): 1 = the script raised, 2 = runner failure or timeout.
SCRIPT_RAISED = 1
RUNNER_FAILED = 2
DEFAULT_TIMEOUT_S = 300


class Result:
    """One emulator run: exit status, output, the runner's statistics and the marks."""

    def __init__(self, returncode, stdout, stderr, stats, host_s):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.stats = stats or {}  # the runner's --json: cpu_cycles, flash, marks, ...
        self.host_s = host_s  # host wall-clock seconds, set-up runs included

    @property
    def ok(self):
        return self.returncode == 0

    @property
    def marks(self):
        """[{label, cycles, emuUs, hostMs, instructions}] for each `@@MARK label` line."""
        return self.stats.get("marks", [])

    def mark_cycles(self, first, last):
        """Emulated CPU cycles between the marks labelled `first` and `last`."""
        by = {m["label"]: m["cycles"] for m in self.marks}
        return by[last] - by[first]

    @property
    def flash(self):
        """Flash operations in the whole run: eraseCalls, erasedBytes, programCalls, ..."""
        return self.stats.get("flash", {})

    def lines(self, prefix):
        """The rest of each printed line that starts with `prefix` (stripped)."""
        n = len(prefix)
        return [line[n:].strip() for line in self.stdout.splitlines() if line.startswith(prefix)]

    def error(self):
        """Why the run failed, in a few lines (empty when it did not)."""
        if self.ok:
            return ""
        what = {SCRIPT_RAISED: "the script raised", RUNNER_FAILED: "runner failure or timeout"}
        tail = "\n".join((self.stdout.strip().splitlines() or [""])[-5:])
        return "exit %d (%s)\n%s\n%s" % (
            self.returncode,
            what.get(self.returncode, "unknown"),
            self.stderr.strip()[-3000:],
            tail,
        )


def _folders(remotes):
    """Every folder the remote paths need, parents first ("/lib", "/lib/kpnthings", ...)."""
    out = []
    for remote in remotes:
        parts = remote.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/" + "/".join(parts[:i])
            if folder not in out:
                out.append(folder)
    return out


def _mkdir_code(folders):
    return (
        "import os\n"
        "for d in %r:\n"
        "    try:\n"
        "        os.mkdir(d)\n"
        "    except OSError:\n"
        "        pass\n" % (folders,)
    )


def run(
    script=None,
    code=None,
    puts=(),
    fs_in=None,
    fs_out=None,
    timeout=DEFAULT_TIMEOUT_S,
    emu=None,
    extra_args=(),
):
    """Boot the emulated Pico W and run `code` (text) and/or `script` (a file) on it.

    `puts` is [(local, remote)]: files copied onto the chip's LittleFS before the script runs.
    The runner cannot make folders, so a first short run makes the ones the remote paths need.
    `fs_in` / `fs_out` load and save the filesystem image, so files survive between runs.
    Returns a Result; raises Unavailable when the emulator cannot be set up.
    """
    emu = Path(emu) if emu is not None else prepare()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rp2emu-") as tmp:
        # The runner works in the emulator's folder: every host path goes to it absolute.
        puts = [(_abs(local), _remote(remote)) for local, remote in puts]
        script, fs_in, fs_out = _abs(script), _abs(fs_in), _abs(fs_out)
        folders = _folders(r for _, r in puts)
        if folders:
            image = os.path.join(tmp, "folders.img")
            made = _run_once(
                emu, code=_mkdir_code(folders), fs_in=fs_in, fs_out=image, timeout=timeout
            )
            if not made.ok:
                made.host_s = time.monotonic() - started
                return made
            fs_in = image
        result = _run_once(
            emu, script, code, puts, fs_in, fs_out, timeout, extra_args, stats_dir=tmp
        )
    result.host_s = time.monotonic() - started
    return result


# What one upload run may carry, as base64 text: the chip holds the whole program's literals
# while it runs, in a heap of 200 KB.
UPLOAD_CHUNK = 64 * 1024
# zlib window for the upload: 2 ** 10 bytes, so the chip's decompressor needs 1 KB, not 32 KB.
_WBITS = 10


def _packed(data):
    z = zlib.compressobj(9, zlib.DEFLATED, _WBITS)
    return base64.b64encode(z.compress(data) + z.flush()).decode()


def upload_program(files):
    """Python for the chip that makes the folders and writes `files` ([(local, remote)]), their
    bytes inside the program, compressed. The runner's --put sends 512 bytes per raw-REPL
    command, escaped: about 0.5 s per KB here, three times slower than this."""
    lines = [
        "import deflate, io, os",
        "from binascii import a2b_base64",
        "def _d(p):",
        "    try:",
        "        os.mkdir(p)",
        "    except OSError:",
        "        pass",
        "def _w(p, n, s):",
        "    b = deflate.DeflateIO(io.BytesIO(a2b_base64(s)), deflate.ZLIB, %d).read()" % _WBITS,
        "    with open(p, 'wb') as f:",
        "        if len(b) != n or f.write(b) != n:",
        "            raise OSError('short write: ' + p)",
    ]
    files = [(Path(local), _remote(remote)) for local, remote in files]
    lines += ["_d(%r)" % d for d in _folders(r for _, r in files)]
    for local, remote in files:
        data = local.read_bytes()
        lines.append("_w(%r, %d, %r)" % (remote, len(data), _packed(data)))
    lines.append("print('@@PUT', %d)" % len(files))
    return "\n".join(lines) + "\n"


def _remote(remote):
    return remote if remote.startswith("/") else "/" + remote


def _image_key(files, base):
    h = hashlib.sha256(FIRMWARE.encode())
    if base is not None:
        h.update(Path(base).read_bytes())
    for local, remote in files:
        h.update(_remote(remote).encode() + b"\0")
        h.update(hashlib.sha256(Path(local).read_bytes()).digest())
    return h.hexdigest()


def build_image(files, out, base=None, emu=None, timeout=DEFAULT_TIMEOUT_S):
    """A filesystem image of the chip's LittleFS holding `files` ([(local, remote)]; folders
    made as needed), on top of image `base` if given. Reused while the files are the same.
    Returns the Result of the last upload run (host_s 0 when the image was reused)."""
    out = Path(out)
    stamp = out.with_name(out.name + ".key")
    key = _image_key(files, base)
    if out.is_file() and stamp.is_file() and stamp.read_text() == key:
        return Result(0, "", "", {}, 0.0)
    emu = Path(emu) if emu is not None else prepare()
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    groups, size = [[]], 0
    for local, remote in files:
        n = len(_packed(Path(local).read_bytes()))
        if groups[-1] and size + n > UPLOAD_CHUNK:
            groups.append([])
            size = 0
        groups[-1].append((local, remote))
        size += n
    image = _abs(base)
    result = None
    with tempfile.TemporaryDirectory(prefix="rp2emu-img-") as tmp:
        for i, group in enumerate(groups):
            program = os.path.join(tmp, "upload%d.py" % i)
            Path(program).write_text(upload_program(group))
            step = os.path.join(tmp, "step%d.img" % i)
            result = _run_once(emu, program, fs_in=image, fs_out=step, timeout=timeout)
            if not result.ok or "@@PUT" not in result.stdout:
                result.host_s = time.monotonic() - started
                if result.ok:
                    result.returncode = RUNNER_FAILED
                return result
            image = step
        shutil.copyfile(image, out)
    stamp.write_text(key)
    result.host_s = time.monotonic() - started
    return result


def _run_once(
    emu,
    script=None,
    code=None,
    puts=(),
    fs_in=None,
    fs_out=None,
    timeout=DEFAULT_TIMEOUT_S,
    extra_args=(),
    stats_dir=None,
):
    node = require_tool("node")
    with tempfile.TemporaryDirectory(prefix="rp2emu-run-", dir=stats_dir) as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        cmd = [
            node,
            str(emu / RUNNER),
            "--firmware",
            str(emu / FIRMWARE),
            "--fs-offset",
            hex(FS_OFFSET),
            "--fs-size",
            hex(FS_SIZE),
            "--timeout",
            str(timeout),
            "--json",
            stats_path,
            "-q",
        ]
        for local, remote in puts:
            cmd += ["--put", "%s:%s" % (local, remote)]
        if fs_in:
            cmd += ["--fs-in", str(fs_in)]
        if fs_out:
            cmd += ["--fs-out", str(fs_out)]
        if code is not None:
            cmd += ["-c", code]
        cmd += list(extra_args)
        if script is not None:
            cmd.append(str(script))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=emu, capture_output=True, text=True, timeout=timeout + 60
            )
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            rc = RUNNER_FAILED
            out = _text(e.stdout)
            err = _text(e.stderr) + "\n[rp2emu] killed after %d s" % (timeout + 60)
        stats = None
        if os.path.exists(stats_path):
            with open(stats_path) as f:
                stats = json.load(f)
        return Result(rc, out.replace("\r\n", "\n"), err, stats, time.monotonic() - t0)


def _abs(path):
    return None if path is None else str(Path(path).resolve())


def _text(data):
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m kpnthings_tools.rp2emu", description=__doc__)
    ap.add_argument("script", nargs="?", help="Python file to run on the chip")
    ap.add_argument("-c", dest="code", help="code to run (before the script if both)")
    ap.add_argument("--put", action="append", default=[], metavar="LOCAL:REMOTE")
    ap.add_argument("--fs-in", help="load the chip's filesystem from this image")
    ap.add_argument("--fs-out", help="save the chip's filesystem to this image")
    ap.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT_S)
    ap.add_argument("--stats", action="store_true", help="print the runner's statistics (JSON)")
    args = ap.parse_args(argv)
    puts = []
    for spec in args.put:
        local, _, remote = spec.partition(":")
        puts.append((local, remote or os.path.basename(local)))
    try:
        result = run(args.script, args.code, puts, args.fs_in, args.fs_out, args.timeout)
    except Unavailable as e:
        print("error: %s" % e, file=sys.stderr)
        return RUNNER_FAILED
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if args.stats:
        print(json.dumps(result.stats, indent=1))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
