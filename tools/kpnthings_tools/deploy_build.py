"""What a deploy builds: the module set compiled to .mpy for the board's CPU (mpy-cross, through
kpnthings_tools.build), the library as one ROMFS image, and the prepare script that runs on the
board first (folders made, stale modules removed)."""

from . import board_romfs, build
from .deploy_checks import DeployError
from .deploy_plan import BOARD_BOARDS, BOARD_LIB, BOARD_ROMFS, PlanItem, RomBranch


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


def compile_modules(board, arch, module_paths, out, root):
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


def rom_branch(code_items, fs_items, out):
    """The ROMFS way: one image of the compiled library and board modules, same layout."""
    image = out / "library.romfs"  # mpremote reads a .romfs path as an image, not a folder
    board_romfs.build_image(
        [(item.src, item.dest) for item in code_items], out / "romfs_tree", image
    )
    prepare = out / "prepare_board_romfs.py"
    prepare.write_text(prepare_script_text(fs_items, romfs=True))
    contents = sorted(set(item.dest.rsplit("/", 1)[0] + "/*.mpy" for item in code_items))
    return RomBranch(PlanItem(image, BOARD_ROMFS, "romfs"), fs_items, prepare, contents)
