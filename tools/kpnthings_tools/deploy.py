"""`kpnthings deploy`: put the library, firmware, board file, config and CA on a board.

Two steps, kept apart so that --dry-run shows exactly what a real deploy would do:

1. `make_plan()` checks everything that can be checked without a board (board name, config,
   CA, port), works out which library modules this config needs (kpnthings_tools.modules) and
   compiles those, and the board module, to .mpy for the board's CPU. The result is a
   `DeployPlan`: every module with the reason it is there, every file with its size and
   destination, and the exact mpremote (or ampy) command lines.
2. `execute()` runs those command lines. With `--romfs auto` (the default) it first asks the
   board `mpremote romfs query`: where the board reports a ROMFS partition the image fits in, the
   library goes there as one ROMFS image (bytecode then runs from flash, not from the heap);
   otherwise, as on stock ESP32 and Pico W firmware, it copies .mpy files.

Board layout written (paths on the board's filesystem, relative to its root):

    boot.py, main.py            firmware/, as source: the board runs these two by name
    lib/kpnthings/*.mpy         the library modules this config needs, compiled (about half the
                                heap of importing .py); in the ROMFS image instead, where used
    lib/boards/__init__.mpy     the board package and the one board module the config names
    lib/boards/<board>.mpy      (in the ROMFS image too, where used), with its pin rules
    lib/boards/<board>_pins.mpy where it has any (read by the config check at boot only)
    config.json                 the device config (holds the secret; never printed)
    ca.der                      the CA bundle, DER, that config["ca_file"] points at
    <name>.der                  each of config["ca_files"], from beside the config (more CAs,
                                trusted together with ca_file's: the next root before a switch)

Before copying, a small script (`prepare_board.py`, written next to the .mpy files) creates the
folders and removes what lib/kpnthings and lib/boards hold that this deploy does not bring,
folders included: a stale `client.py` left by `mip install` would otherwise shadow the new
`client.mpy` (MicroPython tries `.py` before `.mpy`), and a driver an earlier config needed would
only take flash. A ROMFS deploy empties both folders: /rom/lib comes first on sys.path.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import board_romfs, build, config_check, modules

TOOLS = ("mpremote", "ampy")
ROMFS_CHOICES = ("auto", "yes", "no")
BOARD_CA_PATH = "ca.der"
BOARD_CONFIG_PATH = "config.json"
BOARD_LIB = "lib/kpnthings"
BOARD_BOARDS = "lib/boards"
BOARD_ROMFS = "ROMFS%d (/rom)" % board_romfs.PARTITION
PORT_PLACEHOLDER = "PORT"
# What a ca_files entry may be: a file beside config.json on the board, as beside the config here.
_CA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.der$")
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


class RomBranch:
    """The library as one ROMFS image: `image` (a PlanItem), the files that still go to the
    filesystem (`items`: firmware, config, CA) and the prepare script that empties lib/kpnthings
    and lib/boards there."""

    def __init__(self, image, items, prepare_script, contents):
        self.image = image
        self.items = items
        self.prepare_script = Path(prepare_script)
        self.contents = contents  # paths inside the image, e.g. lib/kpnthings/app.mpy


class DeployPlan:
    """Everything a deploy will do; `commands()` gives the exact argv lists to run.

    `items` are the files of the .mpy way; `rom` (or None) the ROMFS way. `romfs` says which one
    runs: "no" the .mpy files, "yes" the image, "auto" the board decides (execute() asks it and
    calls `choose()`); until then `commands()` gives the .mpy way, the stock firmware's.
    `modules` [(lib path, reason)] is the library set, `left_out` [(lib path, why)] the rest.
    """

    def __init__(
        self,
        board,
        arch,
        port,
        tool,
        items,
        prepare_script,
        reset=True,
        resume=False,
        modules=(),
        left_out=(),
        romfs="no",
        rom=None,
        notes=(),
    ):
        self.board = board
        self.arch = arch
        self.port = port
        self.tool = tool
        self.items = items
        self.prepare_script = Path(prepare_script)
        self.reset = reset
        self.resume = resume
        self.modules = list(modules)
        self.left_out = list(left_out)
        self.romfs = romfs
        self.rom = rom
        self.notes = list(notes)

    @property
    def uses_romfs(self):
        return self.romfs == "yes" and self.rom is not None

    def files(self):
        """What the chosen way sends: the image first where it is ROMFS."""
        if self.uses_romfs:
            return [self.rom.image] + self.rom.items
        return self.items

    @property
    def total_size(self):
        return sum(item.size for item in self.files())

    def library_items(self):
        """The library's .mpy files (the .mpy way), in module order."""
        return [item for item in self.items if item.kind == "lib"]

    def choose(self, use_romfs):
        """A copy of this plan that takes one way for certain."""
        other = DeployPlan.__new__(DeployPlan)
        other.__dict__.update(self.__dict__)
        other.romfs = "yes" if use_romfs else "no"
        return other

    def query_command(self):
        """`mpremote romfs query`, on this plan's connection."""
        argv = ["mpremote", "connect", self.port]
        if self.resume:
            argv.append("resume")
        return argv + list(board_romfs.QUERY)

    def commands(self):
        """The command lines, each an argv list starting with the tool's name."""
        if self.tool == "mpremote":
            return [mpremote_command(self)]
        return ampy_commands(self)

    def render(self):
        """The human-readable plan: the module set and why, the files, the exact commands."""
        lines = [
            "deploy plan: board %s (%s), port %s, tool %s, ROMFS %s"
            % (self.board, self.arch or "bytecode", self.port, self.tool, self.romfs),
            "",
        ]
        lines += self._render_modules()
        for note in self.notes:
            lines += ["", note]
        if self.romfs == "auto" and self.rom is not None:
            lines += [
                "",
                "--romfs auto: the deploy first asks the board (%s)."
                % render_command(self.query_command()),
                "",
                "A. The board has no ROMFS partition (stock ESP32_GENERIC and RPI_PICO_W "
                "firmware): the library goes as .mpy files.",
            ]
            lines += self.choose(False)._render_way()
            lines += [
                "",
                "B. The board reports a ROMFS partition of at least %d bytes: the library goes "
                "as one ROMFS image instead." % self.rom.image.size,
            ]
            lines += self.choose(True)._render_way()
        else:
            lines += self._render_way()
        return "\n".join(lines)

    def _render_modules(self):
        sizes = {item.dest: item.size for item in self.library_items()}
        width = max([len(rel) for rel, _why in self.modules + self.left_out] + [6])
        total = sum(sizes.values())
        lines = [
            "library: %d of %d modules, %d bytes of .mpy, for this config:"
            % (len(self.modules), len(self.modules) + len(self.left_out), total),
            "%8s  %-*s  %s" % ("bytes", width, "module", "why it goes"),
        ]
        for rel, why in self.modules:
            size = sizes.get("lib/" + rel[: -len(".py")] + ".mpy", 0)
            lines.append("%8d  %-*s  %s" % (size, width, rel, why))
        if self.left_out:
            lines.append("left out:")
            for rel, why in self.left_out:
                lines.append("%8s  %-*s  %s" % ("-", width, rel, why))
        return lines

    def _render_way(self):
        files = self.files()
        width = max([len(":" + item.dest) for item in files] + [len("destination")])
        lines = ["", "%8s  %-*s  %s" % ("bytes", width, "destination", "source")]
        for item in files:
            lines.append("%8d  %-*s  %s" % (item.size, width, ":" + item.dest, _display(item.src)))
        lines.append("%8d  total, %d files" % (self.total_size, len(files)))
        lines.append("")
        if self.uses_romfs:
            lines.append(
                "the image holds %s, mounted at /rom (/rom/lib is on sys.path before /lib)"
                % ", ".join(self.rom.contents)
            )
            lines.append(
                "first %s runs %s on the board: it removes %s and %s from the filesystem, "
                "where they would only take flash"
                % (self.tool, _display(self.rom.prepare_script), BOARD_LIB, BOARD_BOARDS)
            )
        else:
            lines.append(
                "first %s runs %s on the board: it creates the folders and removes what %s "
                "and %s hold that this deploy does not bring"
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
        return lines


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
    if plan.uses_romfs:
        argv += ["run", str(plan.rom.prepare_script)]
        argv += ["+", "romfs", "deploy", str(plan.rom.image.src)]
        items = plan.rom.items
    else:
        argv += ["run", str(plan.prepare_script)]
        items = plan.items
    for item in items:
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
    """Read a device config and run the full check on it (kpnthings_tools.config_check), before
    anything is compiled or copied.

    Returns the config as the board will read it (defaults filled in). Errors name the file and
    the field, never the secret. `board` (a board name) checks the pins against that board's pin
    map; the board named in the config must be that board (check_board says so plainly).
    """
    path = Path(path)
    if not path.is_file():
        raise DeployError(
            "config %s not found (create one with `kpnthings new-device "
            "--board BOARD --config-out %s`)" % (path, path)
        )
    module = config_check.board_module(board, root)
    try:
        raw = config_check.load_config(str(path))
        merged = config_check.validate(raw, module)
    except config_check.ConfigError as e:
        raise DeployError("config %s: %s" % (path, e)) from None
    for line in config_check.pin_warnings(merged, module):
        sys.stderr.write("kpnthings deploy: warning: config %s: %s\n" % (path, line))
    unknown = config_check.unknown_keys(raw)
    if unknown:
        sys.stderr.write(
            "kpnthings deploy: warning: config %s has keys the firmware does not "
            "know (typos?): %s\n" % (path, ", ".join(unknown))
        )
    return merged


def check_board(board, config, config_path):
    wanted = config.get("board")
    if wanted != board:
        raise DeployError(
            'config %s says "board": %s but --board is %s: deploy the matching board, or set '
            '"board": "%s" in the config' % (config_path, json.dumps(wanted), board, board)
        )


def needs_ca(config):
    """Whether the board verifies a server with the CA in ca_file (ca.der)."""
    if config.get("tls_insecure"):
        return False
    if config.get("transport") == "mqtt":
        # MQTT's own CA (mqtt_ca_file) wins; without it the broker is checked against ca_file.
        return config.get("mqtt_tls", True) is not False and not config.get("mqtt_ca_file")
    return str(config.get("url", "")).lower().startswith("https:")


def resolve_ca(config, config_path, ca):
    """The local CA file to copy, or None. Checks it is DER, and that the config points at it."""
    config_path = Path(config_path)
    if ca is None and config.get("ca_file"):
        # Convenience: a ca_file that sits beside the config is the one to send.
        beside = config_path.parent / str(config["ca_file"])
        if beside.is_file():
            ca = beside
    if ca is None:
        more = config.get("ca_files")
        if (needs_ca(config) and not more) or (more and config.get("ca_file")):
            raise DeployError(
                "config %s uses https and verifies the server, but no CA was given: pass "
                '--ca kpn-ca.der (DER), or set "tls_insecure": true to opt out of '
                "certificate checks" % config_path
            )
        return None
    ca = check_der_file(ca, "CA file")
    wanted = str(config.get("ca_file", "")).lstrip("/")
    if needs_ca(config) and wanted != BOARD_CA_PATH:
        raise DeployError(
            'config %s: ca_file is %s but deploy puts the CA at %s; set "ca_file": "%s"'
            % (config_path, json.dumps(config.get("ca_file")), BOARD_CA_PATH, BOARD_CA_PATH)
        )
    return ca


def check_der_file(path, what):
    """`path` as a Path, after checking it holds DER certificates (one or more, back to back,
    as the board reads them), else DeployError saying how to fix it."""
    from . import ca as ca_tools

    path = Path(path)
    if not path.is_file():
        raise DeployError("%s %s not found" % (what, path))
    data = path.read_bytes()
    if b"-----BEGIN" in data[:64]:
        raise DeployError(
            "%s %s is PEM; the board needs DER (the unix port rejects PEM CA data). "
            "Convert it: openssl x509 -in %s -outform DER -out %s"
            % (what, path, path, path.with_suffix(".der"))
        )
    if not data.startswith(b"\x30"):
        raise DeployError("%s %s is not a DER certificate (it must start with 0x30)" % (what, path))
    try:
        ca_tools.read_der_file(path)
    except ca_tools.CAError as e:
        raise DeployError("%s %s" % (what, e)) from None
    return path


def resolve_ca_files(config, config_path, ca_path):
    """[(local file, name on the board)] for config["ca_files"], and for mqtt_ca_file (the
    broker's own CA) where MQTT over TLS uses it: each a DER file beside the config, copied
    beside config.json on the board under the same name."""
    config_path = Path(config_path)
    fields = [("ca_files", name) for name in config.get("ca_files") or ()]
    mqtt_ca = config.get("mqtt_ca_file")
    if mqtt_ca and config.get("transport") == "mqtt" and config.get("mqtt_tls", True) is not False:
        fields.append(("mqtt_ca_file", mqtt_ca))
    out = []
    for field, name in fields:
        if not isinstance(name, str) or not _CA_NAME.match(name):
            raise DeployError(
                "config %s: %s: %s: deploy copies each CA beside config.json, so give a file"
                ' name ending in .der, without folders, such as "ca-next.der"'
                % (config_path, field, json.dumps(name))
            )
        if name == BOARD_CA_PATH and ca_path is not None:
            raise DeployError(
                "config %s: %s: %s is where ca_file's CA goes; give this one another name"
                % (config_path, field, name)
            )
        if name not in [n for _, n in out]:
            out.append((check_der_file(config_path.parent / name, field + ": CA file"), name))
    return out


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


# Runs on the board (MicroPython): helpers the generated lines below call.
_PREPARE_HELPERS = '''\
"""Written by kpnthings deploy; runs on the board before the files are copied."""

import os


def _kind(path):
    try:
        return "dir" if os.stat(path)[0] & 0x4000 else "file"
    except OSError:
        return None  # not there


def _mkdir(path):
    if _kind(path) is None:
        os.mkdir(path)


def _remove(path):
    if _kind(path) == "dir":
        for name in os.listdir(path):
            _remove(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


def _prune(folder, keep):
    for name in os.listdir(folder):
        if name not in keep:
            _remove(folder + "/" + name)
            print("removed stale", folder + "/" + name)


def _drop(folder):
    if _kind(folder) is not None:
        _remove(folder)
        print("removed", folder, "(the library is in ROMFS now)")
'''

# An earlier ROMFS deploy's library would shadow the .mpy files: /rom/lib is searched first.
_ROM_SHADOW_CHECK = """
if _kind("/rom/lib/kpnthings") is not None:
    raise OSError(
        "/rom/lib/kpnthings (from an earlier ROMFS deploy) would shadow the .mpy files: "
        "deploy with --romfs auto, or empty the partition first (mkdir empty && "
        "mpremote romfs deploy empty)"
    )
"""


def prepare_script_text(items, romfs=False):
    """MicroPython code run on the board first: make folders, drop what this deploy won't bring.

    `romfs`: the library goes to the ROMFS partition, so lib/kpnthings and lib/boards go from
    the filesystem altogether."""
    lines = [_PREPARE_HELPERS]
    if romfs:
        lines += ["_drop(%r)" % BOARD_LIB, "_drop(%r)" % BOARD_BOARDS]
    else:
        lines.append(_ROM_SHADOW_CHECK)
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


def _compile(board, arch, module_paths, out, root):
    """Compile the module set and the board package for `arch`; the .mpy PlanItems."""
    try:
        compiled = build.compile_lib(arch, out / "lib", root, modules=module_paths)
        items = [
            PlanItem(mpy, "lib/" + mpy.relative_to(out / "lib").as_posix(), "lib")
            for _src, mpy, _size in compiled
        ]
        for name in ("__init__", board, board + "_pins"):
            src = root / "boards" / (name + ".py")
            if src.is_file():
                mpy = out / "lib" / "boards" / (name + ".mpy")
                build.compile_file(src, mpy, arch, source_name="boards/%s.py" % name)
                items.append(PlanItem(mpy, "%s/%s.mpy" % (BOARD_BOARDS, name), "board"))
    except build.BuildError as e:
        raise DeployError(str(e)) from None
    return items


def _rom_branch(code_items, fs_items, out):
    """The ROMFS way: one image of the compiled library and board modules, same layout."""
    image = out / "library.romfs"  # mpremote reads a .romfs path as an image, not a folder
    board_romfs.build_image(
        [(item.src, item.dest) for item in code_items], out / "romfs_tree", image
    )
    prepare = out / "prepare_board_romfs.py"
    prepare.write_text(prepare_script_text(fs_items, romfs=True))
    contents = sorted(set(item.dest.rsplit("/", 1)[0] + "/*.mpy" for item in code_items))
    return RomBranch(PlanItem(image, BOARD_ROMFS, "romfs"), fs_items, prepare, contents)


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
    romfs="auto",
):
    """Check the inputs, work out the module set, compile it for the board, and return the
    DeployPlan (nothing is sent). `romfs`: "auto" lets the board decide at execute(), "yes" or
    "no" decide now."""
    root = Path(root) if root else build.repo_root()
    if tool not in TOOLS:
        raise DeployError("unknown tool %r: choose mpremote or ampy" % tool)
    if romfs not in ROMFS_CHOICES:
        raise DeployError("--romfs %s: choose auto, yes or no" % romfs)
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
    notes = []
    if tool == "ampy" and romfs != "no":
        if romfs == "yes":
            raise DeployError("--romfs yes needs mpremote: ampy cannot write a ROMFS partition")
        romfs = "no"
        notes.append("ampy can neither ask the board about ROMFS nor write it: .mpy files go.")
    config = load_config(config_path, board, root)
    check_board(board, config, config_path)
    ca_path = resolve_ca(config, config_path, ca)
    check_firmware(root)
    board_src = root / "boards" / (board + ".py")
    if not board_src.is_file():
        raise DeployError("board file %s missing" % board_src)

    chosen, left = modules.analyse(config, root)
    for where, line, code in modules.unresolved_imports(root, board):
        notes.append(
            "warning: %s line %d imports a module it names at run time (%s): every library "
            "module goes" % (where, line, code)
        )
    out = Path(build_dir) if build_dir else root / "build" / "deploy" / board
    code_items = _compile(board, arch, [rel for rel, _why in chosen], out, root)
    fs_items = [
        PlanItem(root / "firmware" / "boot.py", "boot.py", "firmware"),
        PlanItem(root / "firmware" / "main.py", "main.py", "firmware"),
        PlanItem(config_path, BOARD_CONFIG_PATH, "config"),
    ]
    if ca_path is not None:
        fs_items.append(PlanItem(ca_path, BOARD_CA_PATH, "ca"))
    for src, name in resolve_ca_files(config, config_path, ca_path):
        fs_items.append(PlanItem(src, name, "ca"))
    items = code_items + fs_items

    rom = None
    if romfs != "no":
        try:
            rom = _rom_branch(code_items, fs_items, out)
        except ImportError:
            if romfs == "yes":
                raise DeployError(
                    "--romfs yes: this mpremote cannot build ROMFS images (1.25 or later can)"
                ) from None
            romfs = "no"
            notes.append("this mpremote cannot build ROMFS images (1.25 or later can): .mpy.")
    prepare = out / "prepare_board.py"
    prepare.write_text(prepare_script_text(items))
    if resume:
        reset = False
    return DeployPlan(
        board,
        arch,
        port,
        tool,
        items,
        prepare,
        reset=reset,
        resume=resume,
        modules=chosen,
        left_out=left,
        romfs=romfs,
        rom=rom,
        notes=notes,
    )


def decide_romfs(plan, query_output):
    """(plan that takes one way, the line that says why) from the board's answer to
    `mpremote romfs query`. DeployError where --romfs yes cannot be honoured."""
    size = plan.rom.image.size if plan.rom is not None else 0
    try:
        answer = board_romfs.parse_query(query_output)
    except board_romfs.QueryError as e:
        if plan.romfs == "yes":
            raise DeployError("--romfs yes: %s" % e) from None
        return plan.choose(False), "%s: copying .mpy files" % e
    if not answer.has_partition:
        if plan.romfs == "yes":
            raise DeployError("--romfs yes, but the board says: %s" % answer.said)
        return plan.choose(False), "board: %s -> copying .mpy files" % answer.said
    if answer.partition_size < size:
        msg = "the ROMFS image (%d bytes) does not fit the board's partition (%d bytes)" % (
            size,
            answer.partition_size,
        )
        if plan.romfs == "yes":
            raise DeployError("--romfs yes, but %s" % msg)
        return plan.choose(False), msg + " -> copying .mpy files"
    return plan.choose(True), "board: %s -> writing the library as a %d-byte ROMFS image" % (
        answer.said,
        size,
    )


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
    """Run the plan's commands; raise DeployError on the first failure. Returns 0.

    With --romfs auto or yes, the board is asked `mpremote romfs query` first and the plan takes
    the way its answer allows (decide_romfs). `executable` replaces the tool's path (tests use a
    stand-in that records its arguments).
    """
    out = out or sys.stdout
    exe = executable or tool_executable(plan.tool)
    if plan.romfs != "no" and plan.rom is not None and plan.tool == "mpremote":
        answer = _run(plan, plan.query_command(), exe, timeout, out)
        plan, why = decide_romfs(plan, answer)
        out.write(why + "\n")
    else:
        plan = plan.choose(False)
    for argv in plan.commands():
        _run(plan, argv, exe, timeout, out)
    if plan.uses_romfs:
        out.write(
            "deployed a %d-byte ROMFS image of %d modules and %d files to %s\n"
            % (plan.rom.image.size, len(plan.modules), len(plan.rom.items), plan.port)
        )
    else:
        out.write(
            "deployed %d files (%d bytes) to %s\n" % (len(plan.items), plan.total_size, plan.port)
        )
    return 0


def _run(plan, argv, exe, timeout, out):
    """One tool invocation, echoed; its stdout, or DeployError."""
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
    return proc.stdout


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
        "--romfs",
        choices=ROMFS_CHOICES,
        default="auto",
        help="the library as a ROMFS image: auto (default) asks the board (`mpremote romfs "
        "query`) and uses its ROMFS partition where it has one, else copies .mpy files; "
        "yes insists; no always copies .mpy files. A dry run shows both ways for auto",
    )
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
            romfs=args.romfs,
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
