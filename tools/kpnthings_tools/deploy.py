"""`kpnthings deploy`: put the library, firmware, board file, config and CA on a board.

Two steps, kept apart so that --dry-run shows exactly what a real deploy would do:

1. `make_plan()` checks everything that can be checked without a board (board name, config,
   CA, port) and compiles lib/kpnthings and the board module to .mpy for the board's CPU.
   The result is a `DeployPlan`: every file with its size and destination, and the exact
   mpremote (or ampy) command lines.
2. `execute()` runs those command lines.

Board layout written (paths on the board's filesystem, relative to its root):

    boot.py, main.py            firmware/, as source: the board runs these two by name
    lib/kpnthings/*.mpy         the library, compiled (about half the heap of importing .py)
    lib/boards/__init__.mpy     the board package and the one board module the config names
    lib/boards/<board>.mpy
    config.json                 the device config (holds the secret; never printed)
    ca.der                      the CA bundle, DER, that config["ca_file"] points at

Before copying, a small script (`prepare_board.py`, written next to the .mpy files) creates the
folders and removes files in lib/kpnthings and lib/boards that this deploy does not bring:
a stale `client.py` left by `mip install` would otherwise shadow the new `client.mpy`, because
MicroPython tries `.py` before `.mpy`.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import build

TOOLS = ("mpremote", "ampy")
BOARD_CA_PATH = "ca.der"
BOARD_CONFIG_PATH = "config.json"
BOARD_LIB = "lib/kpnthings"
BOARD_BOARDS = "lib/boards"
PORT_PLACEHOLDER = "PORT"
# A whole deploy copies ~100 KB: about a minute over a 115200 baud raw REPL. Five times that
# means the board or the port is stuck.
DEFAULT_TIMEOUT_S = 300


class DeployError(Exception):
    """Something the user must fix before a deploy can run; the message says what."""


class PlanItem:
    """One file to copy: local source, destination on the board, size in bytes, and kind."""

    __slots__ = ("dest", "kind", "size", "src")

    def __init__(self, src, dest, kind):
        self.src = Path(src)
        self.dest = dest
        self.kind = kind
        self.size = self.src.stat().st_size

    def __repr__(self):
        return "PlanItem(%r -> :%s, %d bytes)" % (str(self.src), self.dest, self.size)


class DeployPlan:
    """Everything a deploy will do; `commands()` gives the exact argv lists to run."""

    def __init__(self, board, arch, port, tool, items, prepare_script, reset=True, resume=False):
        self.board = board
        self.arch = arch
        self.port = port
        self.tool = tool
        self.items = items
        self.prepare_script = Path(prepare_script)
        self.reset = reset
        self.resume = resume

    @property
    def total_size(self):
        return sum(item.size for item in self.items)

    def commands(self):
        """The command lines, each an argv list starting with the tool's name."""
        if self.tool == "mpremote":
            return [mpremote_command(self)]
        return ampy_commands(self)

    def render(self):
        """The human-readable plan: files, sizes, destinations, then the exact commands."""
        width = max([len(":" + item.dest) for item in self.items] + [len("destination")])
        lines = [
            "deploy plan: board %s (%s), port %s, tool %s"
            % (self.board, self.arch or "bytecode", self.port, self.tool),
            "",
            "%8s  %-*s  %s" % ("bytes", width, "destination", "source"),
        ]
        for item in self.items:
            lines.append("%8d  %-*s  %s" % (item.size, width, ":" + item.dest, _display(item.src)))
        lines.append("%8d  total, %d files" % (self.total_size, len(self.items)))
        lines.append("")
        lines.append(
            "first %s runs %s on the board: it creates the folders and removes files in %s "
            "and %s that this deploy does not bring"
            % (self.tool, _display(self.prepare_script), BOARD_LIB, BOARD_BOARDS)
        )
        if self.reset:
            lines.append("then the board is reset and boots the new firmware")
        else:
            lines.append("the board is not reset (--no-reset or --resume)")
        lines.append("")
        lines.append("commands:")
        for argv in self.commands():
            lines.append(render_command(argv))
        return "\n".join(lines)


def _display(path):
    """A path relative to the current folder when it is below it, else absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def render_command(argv):
    """One shell line per mpremote step (`+` separated), so long plans stay readable."""
    parts = []
    line = []
    for arg in argv:
        if arg == "+":
            parts.append(" ".join(shlex.quote(_display_arg(a)) for a in line))
            line = []
        else:
            line.append(arg)
    parts.append(" ".join(shlex.quote(_display_arg(a)) for a in line))
    return " \\\n    + ".join(parts)


def _display_arg(arg):
    # Local source paths print relative to the current folder, as a user would type them.
    if os.path.isabs(arg) and os.path.exists(arg):
        return _display(arg)
    return arg


def mpremote_command(plan):
    """One mpremote invocation chaining every step with `+` (one connection, one raw REPL)."""
    argv = ["mpremote", "connect", plan.port]
    if plan.resume:
        # The unix-port stand-in ends its process on a soft reset (PROTOCOL.md).
        argv.append("resume")
    argv += ["run", str(plan.prepare_script)]
    for item in plan.items:
        argv += ["+", "fs", "cp", str(item.src), ":" + item.dest]
    if plan.reset:
        argv += ["+", "reset"]
    return argv


def ampy_commands(plan):
    """ampy runs one command per connection; the prepare script creates the folders."""
    base = ["ampy", "--port", plan.port]
    cmds = [base + ["run", str(plan.prepare_script)]]
    for item in plan.items:
        cmds.append(base + ["put", str(item.src), item.dest])
    if plan.reset:
        cmds.append(base + ["reset", "--hard"])
    return cmds


# -- checks ----------------------------------------------------------------------------------


def load_config(path, board=None, root=None):
    """Read and validate a device config with the firmware's own validator.

    Returns the merged config (defaults filled in). Errors name the file and the field, never
    the secret. `board` (a board name) lets the validator check actuator pins against that
    board's pin map.
    """
    from kpnthings import config as config_module

    path = Path(path)
    if not path.is_file():
        raise DeployError(
            "config %s not found (create one with `kpnthings new-device "
            "--board BOARD --config-out %s`)" % (path, path)
        )
    try:
        raw = config_module.load_config(str(path))
        merged = config_module.validate(raw, _board_module(board, root))
    except config_module.ConfigError as e:
        raise DeployError("config %s: %s" % (path, e)) from None
    unknown = config_module.unknown_keys(raw)
    if unknown:
        sys.stderr.write(
            "kpnthings deploy: warning: config %s has keys the firmware does not "
            "know (typos?): %s\n" % (path, ", ".join(unknown))
        )
    return merged


def _board_module(board, root=None):
    """boards/<board>.py loaded on the host for its pin map (its sensors import lazily)."""
    if not board:
        return None
    import importlib.util

    root = Path(root) if root else build.repo_root()
    src = root / "boards" / (board + ".py")
    if not src.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_kpnthings_board_" + board, src)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # a board file that needs the device: skip the pin checks
        return None
    return module


def check_board(board, config, config_path):
    wanted = config.get("board")
    if wanted != board:
        raise DeployError(
            'config %s says "board": %s but --board is %s: deploy the matching board, or set '
            '"board": "%s" in the config' % (config_path, json.dumps(wanted), board, board)
        )


def needs_ca(config):
    return str(config.get("url", "")).lower().startswith("https:") and not config.get(
        "tls_insecure"
    )


def resolve_ca(config, config_path, ca):
    """The local CA file to copy, or None. Checks it is DER, and that the config points at it."""
    config_path = Path(config_path)
    if ca is None and config.get("ca_file"):
        # Convenience: a ca_file that sits beside the config is the one to send.
        beside = config_path.parent / str(config["ca_file"])
        if beside.is_file():
            ca = beside
    if ca is None:
        if needs_ca(config):
            raise DeployError(
                "config %s uses https and verifies the server, but no CA was given: pass "
                '--ca kpn-ca.der (DER), or set "tls_insecure": true to opt out of '
                "certificate checks" % config_path
            )
        return None
    ca = Path(ca)
    if not ca.is_file():
        raise DeployError("CA file %s not found" % ca)
    head = ca.read_bytes()[:64]
    if b"-----BEGIN" in head:
        raise DeployError(
            "CA file %s is PEM; the board needs DER (the unix port rejects PEM CA data). "
            "Convert it: openssl x509 -in %s -outform DER -out %s"
            % (ca, ca, ca.with_suffix(".der"))
        )
    if not head.startswith(b"\x30"):
        raise DeployError("CA file %s is not a DER certificate (it must start with 0x30)" % ca)
    wanted = str(config.get("ca_file", "")).lstrip("/")
    if needs_ca(config) and wanted != BOARD_CA_PATH:
        raise DeployError(
            'config %s: ca_file is %s but deploy puts the CA at %s; set "ca_file": "%s"'
            % (config_path, json.dumps(config.get("ca_file")), BOARD_CA_PATH, BOARD_CA_PATH)
        )
    return ca


def check_port(port, tool, must_exist=True):
    if not port:
        raise DeployError(
            "--port is required (e.g. /dev/ttyUSB0, COM3, or socket://host:port); "
            "list serial ports with `mpremote connect list`"
        )
    if tool == "ampy" and "://" in port:
        raise DeployError(
            "ampy cannot open %s: it speaks to serial ports only; use --tool mpremote" % port
        )
    if must_exist and port.startswith("/dev/") and not os.path.exists(port):
        raise DeployError(
            "port %s does not exist: is the board plugged in? list serial ports "
            "with `mpremote connect list`" % port
        )


def check_firmware(root):
    missing = [n for n in ("boot.py", "main.py") if not (root / "firmware" / n).is_file()]
    if missing:
        raise DeployError("firmware/%s missing in %s" % (" and firmware/".join(missing), root))


# -- plan ------------------------------------------------------------------------------------


def board_folders(items):
    """Every folder the items land in, parents first (lib, lib/kpnthings, lib/kpnthings/x, ...)."""
    folders = set()
    for item in items:
        parts = item.dest.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    return sorted(folders, key=lambda f: (f.count("/"), f))


def _managed(folder):
    """Folders this deploy owns outright, where files it does not bring are stale."""
    return any(folder == top or folder.startswith(top + "/") for top in (BOARD_LIB, BOARD_BOARDS))


def prepare_script_text(items):
    """MicroPython code run on the board first: make folders, drop files this deploy won't bring."""
    lines = [
        '"""Written by kpnthings deploy; run on the board before the files are copied."""',
        "import os",
        "",
        "",
        "def _mkdir(path):",
        "    try:",
        "        os.mkdir(path)",
        "    except OSError:",
        "        pass  # already there",
        "",
        "",
        "def _prune(folder, keep):",
        "    for name in os.listdir(folder):",
        "        if name not in keep:",
        "            try:",
        "                os.remove(folder + '/' + name)",
        "                print('removed stale', folder + '/' + name)",
        "            except OSError:",
        "                pass  # a folder: left alone",
        "",
        "",
    ]
    folders = board_folders(items)
    for folder in folders:
        lines.append("_mkdir(%r)" % folder)
    for folder in folders:
        if _managed(folder):
            keep = sorted(
                set(
                    item.dest[len(folder) + 1 :].split("/")[0]
                    for item in items
                    if item.dest.startswith(folder + "/")
                )
            )
            lines.append("_prune(%r, %r)" % (folder, tuple(keep)))
    return "\n".join(lines) + "\n"


def make_plan(
    board,
    config_path,
    port=None,
    ca=None,
    tool="mpremote",
    dry_run=False,
    reset=True,
    resume=False,
    build_dir=None,
    root=None,
):
    """Check the inputs, compile for the board, and return the DeployPlan (nothing is sent)."""
    root = Path(root) if root else build.repo_root()
    if tool not in TOOLS:
        raise DeployError("unknown tool %r: choose mpremote or ampy" % tool)
    try:
        arch = build.arch_for_board(board)
    except build.BuildError as e:
        raise DeployError(str(e)) from None
    if dry_run and not port:
        port = PORT_PLACEHOLDER
    # A dry run plans for a board that need not be plugged in yet.
    check_port(port, tool, must_exist=not dry_run)
    if resume and tool != "mpremote":
        raise DeployError("--resume is an mpremote feature; use --tool mpremote")
    config = load_config(config_path, board, root)
    check_board(board, config, config_path)
    ca_path = resolve_ca(config, config_path, ca)
    check_firmware(root)
    board_src = root / "boards" / (board + ".py")
    if not board_src.is_file():
        raise DeployError("board file %s missing" % board_src)

    out = Path(build_dir) if build_dir else root / "build" / "deploy" / board
    try:
        compiled = build.compile_lib(arch, out / "lib", root)
        boards_out = out / "lib" / "boards"
        board_items = []
        for name in ("__init__", board):
            src = root / "boards" / (name + ".py")
            if src.is_file():
                mpy = boards_out / (name + ".mpy")
                build.compile_file(src, mpy, arch, source_name="boards/%s.py" % name)
                board_items.append(PlanItem(mpy, "%s/%s.mpy" % (BOARD_BOARDS, name), "board"))
    except build.BuildError as e:
        raise DeployError(str(e)) from None

    items = [
        PlanItem(mpy, "%s/%s" % ("lib", mpy.relative_to(out / "lib").as_posix()), "lib")
        for _src, mpy, _size in compiled
    ]
    items += board_items
    items.append(PlanItem(root / "firmware" / "boot.py", "boot.py", "firmware"))
    items.append(PlanItem(root / "firmware" / "main.py", "main.py", "firmware"))
    items.append(PlanItem(config_path, BOARD_CONFIG_PATH, "config"))
    if ca_path is not None:
        items.append(PlanItem(ca_path, BOARD_CA_PATH, "ca"))

    prepare = out / "prepare_board.py"
    prepare.write_text(prepare_script_text(items))
    if resume:
        reset = False
    return DeployPlan(board, arch, port, tool, items, prepare, reset=reset, resume=resume)


# -- execute ---------------------------------------------------------------------------------


def tool_executable(name):
    """The venv's copy of mpremote/ampy first (the one pyproject pins), then PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise DeployError(
        "%s not found: install it in the venv (pip install %s)"
        % (name, "adafruit-ampy" if name == "ampy" else name)
    )


def execute(plan, timeout=DEFAULT_TIMEOUT_S, out=None, executable=None):
    """Run the plan's commands; raise DeployError on the first failure.

    `executable` replaces the tool's path (tests use a stand-in that records its arguments).
    """
    out = out or sys.stdout
    exe = executable or tool_executable(plan.tool)
    for argv in plan.commands():
        out.write("$ %s\n" % render_command(argv))
        out.flush()
        try:
            proc = subprocess.run([exe] + argv[1:], timeout=timeout, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            raise DeployError(
                "%s did not finish within %d s: is the board on %s and not busy "
                "in another terminal?" % (plan.tool, timeout, plan.port)
            ) from None
        if proc.stdout:
            out.write(proc.stdout)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise DeployError(
                "%s failed (exit %d): %s"
                % (plan.tool, proc.returncode, detail[-1] if detail else "no output")
            )
    out.write(
        "deployed %d files (%d bytes) to %s\n" % (len(plan.items), plan.total_size, plan.port)
    )
    return 0


# -- CLI -------------------------------------------------------------------------------------


def add_parser(sub):
    """Register `kpnthings deploy` on an argparse subparsers object."""
    p = sub.add_parser(
        "deploy",
        help="compile and copy the firmware, config and CA to a board",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--port", help="serial port (/dev/ttyUSB0, COM3) or socket://host:port")
    p.add_argument("--board", required=True, help="esp32 or pico_w (unix: the host stand-in)")
    p.add_argument("--config", required=True, help="the device's config.json")
    p.add_argument("--ca", help="CA certificate (DER) to store as :ca.der")
    p.add_argument("--dry-run", action="store_true", help="print the plan; touch no board")
    p.add_argument("--tool", choices=TOOLS, default="mpremote", help="transport (default mpremote)")
    p.add_argument("--no-reset", action="store_true", help="leave the board running, no reset")
    p.add_argument(
        "--resume",
        action="store_true",
        help="pass `resume` to mpremote (no soft reset on connect, no reset after): "
        "for the unix-port stand-in, which a reset would end",
    )
    p.add_argument("--build-dir", help="where the .mpy files go (default build/deploy/BOARD)")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds before a hung transfer is abandoned",
    )
    p.set_defaults(run=run_cli)
    return p


def run_cli(args):
    try:
        plan = make_plan(
            args.board,
            args.config,
            port=args.port,
            ca=args.ca,
            tool=args.tool,
            dry_run=args.dry_run,
            reset=not args.no_reset,
            resume=args.resume,
            build_dir=args.build_dir,
        )
        print(plan.render())
        if args.dry_run:
            return 0
        print()
        return execute(plan, timeout=args.timeout)
    except DeployError as e:
        sys.stderr.write("kpnthings deploy: %s\n" % e)
        return 2


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="kpnthings")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
