"""The RP2040 emulator's ready-to-run copy: found through $RP2EMU, copied into build/rp2emu/.

The emulator is not part of this project: the environment variable RP2EMU names its folder
(run-pico.mjs, package.json, firmware/RPI_PICO_W-firmware.uf2; its README says how to build the
firmware). That folder may be read-only (CI), so `prepare()` copies it into build/rp2emu/ and
runs `npm ci` there, once: the copy is redone only when a file of the source changes.
kpnthings_tools.rp2emu runs scripts on it.
"""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

ENV = "RP2EMU"
ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "rp2emu"
# The Pico W image (the emulator's README).
FIRMWARE = "firmware/RPI_PICO_W-firmware.uf2"
RUNNER = "run-pico.mjs"
_STAMP = ".kpnthings-source"
# Copied from the source folder: everything but what npm makes and the runner's own results.
_SKIP = ("node_modules", "results")


class Unavailable(Exception):
    """The emulator cannot be used here; the message says what to set or install."""


def source_dir(environ=None):
    """The emulator's folder, from $RP2EMU; Unavailable if unset or not an rp2emu folder."""
    environ = os.environ if environ is None else environ
    value = environ.get(ENV)
    if not value:
        raise Unavailable(
            "%s is not set: point it at the rp2emu folder (run-pico.mjs, package.json and "
            "%s, built with its build.sh)" % (ENV, FIRMWARE)
        )
    src = Path(value).expanduser()
    for name in (RUNNER, "package.json", FIRMWARE):
        if not (src / name).is_file():
            raise Unavailable("%s=%s has no %s" % (ENV, src, name))
    return src


def require_tool(name):
    """The path of `name` (node, npm) on PATH; Unavailable says how to install Node.js."""
    path = shutil.which(name)
    if path is None:
        raise Unavailable(
            "%s not found on PATH: the RP2040 emulator runs under Node.js 18 or later "
            "(Debian: apt-get install nodejs npm)" % name
        )
    return path


def _source_files(src):
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP)
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _fingerprint(src):
    """Changes when any file of the source folder changes (path, size, modification time)."""
    h = hashlib.sha256()
    for path in _source_files(src):
        st = path.stat()
        h.update(("%s %d %d\n" % (path.relative_to(src), st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()


def _copy_tree(src, dest):
    # Plain file copies with our own permissions: the source's read-only bits must not stop the
    # next update of the copy (shutil.copytree would copy them onto the folders).
    for path in _source_files(src):
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.chmod(0o644)
        shutil.copyfile(path, target)
        target.chmod(0o755 if os.access(path, os.X_OK) else 0o644)


def prepare(src=None, dest=BUILD, log=None):
    """The ready-to-run copy of the emulator in `dest` (build/rp2emu/): copied from $RP2EMU
    and `npm ci` run there, unless the copy is already up to date. Returns `dest`."""
    src = Path(src) if src is not None else source_dir()
    require_tool("node")
    npm = require_tool("npm")
    dest = Path(dest)
    stamp = dest / _STAMP
    want = "%s\n%s\n" % (src.resolve(), _fingerprint(src))
    installed = (dest / "node_modules" / "rp2040js" / "package.json").is_file()
    if installed and stamp.is_file() and stamp.read_text() == want:
        return dest
    if log:
        log("rp2emu: copying %s to %s and installing rp2040js" % (src, dest))
    dest.mkdir(parents=True, exist_ok=True)
    _copy_tree(src, dest)
    # npm ci installs exactly the versions package-lock.json pins.
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    if not (dest / "package-lock.json").is_file():
        cmd[1] = "install"
    proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise Unavailable(
            "npm could not install the emulator's packages in %s:\n%s"
            % (dest, (proc.stderr or proc.stdout).strip()[-2000:])
        )
    stamp.write_text(want)
    return dest
