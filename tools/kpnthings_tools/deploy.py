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

    boot.py, main.py            firmware/, as source: the board runs these two by name (boot.py
                                is firmware/boot_update.py for a config with update)
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

The parts: deploy_checks (config, board, CA, port), deploy_build (.mpy, the ROMFS image, the
prepare script), deploy_plan (DeployPlan and how it reads), deploy_transfer (the command lines,
the board's ROMFS answer, running them). The names callers use stay importable from here.
"""

import sys
from pathlib import Path

from . import build, modules
from .deploy_build import (  # noqa: F401 (re-exported)
    board_folders,
    compile_modules,
    prepare_script_text,
    rom_branch,
)
from .deploy_checks import (  # noqa: F401 (re-exported)
    BOARD_CA_PATH,
    DeployError,
    check_board,
    check_der_file,
    check_firmware,
    check_port,
    load_config,
    needs_ca,
    resolve_ca,
    resolve_ca_files,
)
from .deploy_plan import (  # noqa: F401 (re-exported)
    BOARD_BOARDS,
    BOARD_LIB,
    BOARD_ROMFS,
    DeployPlan,
    PlanItem,
    RomBranch,
)
from .deploy_transfer import (  # noqa: F401 (re-exported)
    DEFAULT_TIMEOUT_S,
    TOOLS,
    ampy_commands,
    decide_romfs,
    execute,
    mpremote_command,
    render_command,
    tool_executable,
)

ROMFS_CHOICES = ("auto", "yes", "no")
BOARD_CONFIG_PATH = "config.json"
PORT_PLACEHOLDER = "PORT"


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
    code_items = compile_modules(board, arch, [rel for rel, _why in chosen], out, root)
    fs_items = [
        # With config "update", boot.py is the one that picks the version folder to boot;
        # without, the plain one, so that no update name is interned at any boot.
        PlanItem(
            root / "firmware" / ("boot_update.py" if config.get("update") else "boot.py"),
            "boot.py",
            "firmware",
        ),
        PlanItem(root / "firmware" / "main.py", "main.py", "firmware"),
        PlanItem(config_path, BOARD_CONFIG_PATH, "config"),
    ]
    if ca_path is not None:
        fs_items.append(PlanItem(ca_path, BOARD_CA_PATH, "ca"))
    for src, name in resolve_ca_files(config, config_path, ca_path):
        fs_items.append(PlanItem(src, name, "ca"))
    want = config.get("update")
    if want:  # the public key only: the private one never leaves the host (docs/updates.md)
        key = Path(config_path).parent / want["key"]
        if not key.is_file() or key.stat().st_size != 65:
            raise DeployError(
                "update.key: %s is not a 65-byte public key (kpnthings keygen makes one)" % key
            )
        fs_items.append(PlanItem(key, want["key"], "update key"))
    items = code_items + fs_items

    rom = None
    if romfs != "no":
        try:
            rom = rom_branch(code_items, fs_items, out)
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
