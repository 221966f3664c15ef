"""How `kpnthings deploy` reaches the board: the mpremote (or ampy) command lines of a plan,
the board's answer to `mpremote romfs query`, and running the commands with a timeout."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import board_romfs
from .deploy_checks import DeployError

TOOLS = ("mpremote", "ampy")
# A whole deploy copies ~100 KB: about a minute over a 115200 baud raw REPL. Five times that
# means the board or the port is stuck.
DEFAULT_TIMEOUT_S = 300


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


# -- the board's answer ----------------------------------------------------------------------


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
