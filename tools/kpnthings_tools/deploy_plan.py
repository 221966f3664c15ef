"""A deploy's plan: every file with its size and destination on the board, the library modules
with the reason each goes (or stays behind), and the exact command lines, shown by --dry-run and
run by deploy_transfer.execute. kpnthings_tools.deploy.make_plan makes one."""

from pathlib import Path

from . import board_romfs
from .deploy_transfer import _display, ampy_commands, mpremote_command, render_command

BOARD_LIB = "lib/kpnthings"
BOARD_BOARDS = "lib/boards"
BOARD_ROMFS = "ROMFS%d (/rom)" % board_romfs.PARTITION


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
