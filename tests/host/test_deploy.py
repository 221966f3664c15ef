"""`kpnthings deploy`: the plan and exact command lines for both boards, the compiled files (which
load on MicroPython, and whose clock believes no time before the build day), the dry run, and the
plan executed by a stand-in tool (in order, stopping at the first failure or at the timeout).

Its other subjects have their own files: test_deploy_errors.py (every user error),
test_deploy_real.py (a real mpremote deploy into the unix port standing in for a board, socat
bridge, PROTOCOL.md, after which the firmware starts from the folder the files landed in),
test_deploy_modules.py (the firmware booted from exactly the module set a plan copies, for every
example config and for MQTT) and test_deploy_romfs.py (ROMFS: the board decides). The shared
fixtures ca_der and board_standin are in conftest.py.
"""

import io
import os
import re
import shlex
import subprocess

import pytest
from _deploy_support import (
    MICROPYTHON,
    ROOT,
    _calls,
    _cli,
    _expected_dests,
    _fake_tool,
    _write_config,
)

from kpnthings_tools import build, deploy

# -- the plan and its command lines ------------------------------------------------------------


def _lib_modules():
    lib = ROOT / "lib"
    return sorted(
        p.relative_to(lib).as_posix()
        for p in (lib / "kpnthings").rglob("*.py")
        if "__pycache__" not in p.parts
    )


@pytest.mark.parametrize(("board", "arch"), [("esp32", "xtensawin"), ("pico_w", "armv6m")])
def test_plan_lists_every_file_with_size_and_destination(tmp_path, ca_der, board, arch):
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, board)
    plan = deploy.make_plan(
        board, cfg, port="/dev/ttyACM0", ca=ca_der, dry_run=True, build_dir=tmp_path / "b"
    )
    assert plan.arch == arch
    assert sorted(i.dest for i in plan.items) == sorted(_expected_dests(board, config))
    # An HTTPS config without sensors: no MQTT or sensor code goes to the board.
    assert not [d for d in plan.items if re.match(r"lib/kpnthings/(mqtt|sensors)", d.dest)]
    for item in plan.items:
        assert item.size == item.src.stat().st_size > 0
    by_dest = {i.dest: i for i in plan.items}
    assert by_dest["config.json"].src == cfg
    assert by_dest["ca.der"].src == ca_der
    assert by_dest["boot.py"].src == ROOT / "firmware" / "boot.py"
    assert by_dest["main.py"].src == ROOT / "firmware" / "main.py"
    # Only the chosen board's module goes: the other board's pin map would waste flash.
    other = "pico_w" if board == "esp32" else "esp32"
    assert "lib/boards/%s.mpy" % other not in by_dest


@pytest.mark.parametrize("board", ["esp32", "pico_w"])
def test_mpremote_command_line_is_exact(tmp_path, ca_der, board):
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, board)
    out = tmp_path / "b"
    plan = deploy.make_plan(board, cfg, port="/dev/ttyUSB0", ca=ca_der, dry_run=True, build_dir=out)
    [argv] = plan.commands()
    expected = ["mpremote", "connect", "/dev/ttyUSB0", "run", str(out / "prepare_board.py")]
    mpy_dests = [d for d in _expected_dests(board, config) if d.endswith(".mpy")]
    for dest in mpy_dests:
        expected += ["+", "fs", "cp", str(out / dest), ":" + dest]
    expected += ["+", "fs", "cp", str(ROOT / "firmware" / "boot.py"), ":boot.py"]
    expected += ["+", "fs", "cp", str(ROOT / "firmware" / "main.py"), ":main.py"]
    expected += ["+", "fs", "cp", str(cfg), ":config.json"]
    expected += ["+", "fs", "cp", str(ca_der), ":ca.der"]
    expected += ["+", "reset"]
    assert argv == expected
    # The rendered line is a shell command that splits back into the same argv.
    rendered = deploy.render_command(argv).replace(" \\\n    ", " ")
    assert shlex.split(rendered)[:3] == ["mpremote", "connect", "/dev/ttyUSB0"]
    assert shlex.split(rendered)[-2:] == ["+", "reset"]


def test_ampy_command_lines_are_exact(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, "pico_w")
    out = tmp_path / "b"
    plan = deploy.make_plan(
        "pico_w", cfg, port="/dev/ttyACM0", ca=ca_der, tool="ampy", dry_run=True, build_dir=out
    )
    assert plan.romfs == "no"  # ampy can neither ask about ROMFS nor write it
    cmds = plan.commands()
    base = ["ampy", "--port", "/dev/ttyACM0"]
    assert cmds[0] == base + ["run", str(out / "prepare_board.py")]
    assert cmds[-1] == base + ["reset", "--hard"]
    puts = cmds[1:-1]
    assert [c[:4] for c in puts] == [base + ["put"]] * len(puts)
    assert sorted(c[5] for c in puts) == sorted(_expected_dests("pico_w", config))


def test_resume_and_no_reset(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32")
    plan = deploy.make_plan(
        "esp32", cfg, port="socket://127.0.0.1:1", ca=ca_der, resume=True, build_dir=tmp_path / "b"
    )
    [argv] = plan.commands()
    assert argv[:4] == ["mpremote", "connect", "socket://127.0.0.1:1", "resume"]
    assert "reset" not in argv  # a reset would end the unix-port stand-in
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/x", ca=ca_der, reset=False, dry_run=True, build_dir=tmp_path / "b"
    )
    [argv] = plan.commands()
    assert "resume" not in argv and argv[-1] != "reset"


def test_prepare_script_makes_folders_and_prunes_only_what_deploy_owns(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32")
    plan = deploy.make_plan("esp32", cfg, ca=ca_der, dry_run=True, build_dir=tmp_path / "b")
    text = plan.prepare_script.read_text()
    compile(text, "prepare_board.py", "exec")
    assert "_mkdir('lib')" in text and "_mkdir('lib/kpnthings')" in text
    assert "_prune('lib/kpnthings'," in text and "_prune('lib/boards'," in text
    assert "_prune('lib'," not in text  # other libraries in lib/ are the user's


def test_compiled_files_load_on_micropython(tmp_path):
    """The very .mpy files a board gets import under the unix port (bytecode is portable)."""
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    for arch in build.ARCHS:
        out = tmp_path / arch
        results = build.compile_lib(arch, out)
        assert [r[0].relative_to(ROOT / "lib").as_posix() for r in results] == _lib_modules()
        code = "import kpnthings.auth as a, kpnthings.config as c; print(a.__file__, c.__file__)"
        env = dict(os.environ, MICROPYPATH="%s:%s:.frozen" % (out, ROOT / "tests" / "fakes"))
        proc = subprocess.run(
            [MICROPYTHON, "-c", code], capture_output=True, text=True, env=env, timeout=30
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == [
            str(out / "kpnthings/auth.mpy"),
            str(out / "kpnthings/config.mpy"),
        ]
    # A traceback names the module by its dotted name, which the board interns anyway when it
    # imports it: a path would be one more name held for good (20 of them at rest).
    code = "import kpnthings.config as c\nc.load_config(None)"
    proc = subprocess.run(
        [MICROPYTHON, "-c", code], capture_output=True, text=True, env=env, timeout=30
    )
    assert 'File "kpnthings.config", line' in proc.stdout + proc.stderr, proc.stdout
    mpy = (out / "kpnthings/config.mpy").read_bytes()
    assert b"kpnthings.config" in mpy and b"kpnthings/config.py" not in mpy


def _min_valid_of(tree):
    code = "import kpnthings.clock as c; print(c.MIN_VALID)"
    env = dict(os.environ, MICROPYPATH="%s:.frozen" % tree)
    proc = subprocess.run(
        [MICROPYTHON, "-c", code], capture_output=True, text=True, env=env, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout)


def test_the_compiled_clock_believes_no_time_before_the_build_day(tmp_path, monkeypatch):
    """Issue 18, item 1: an RTC (or an NTP answer) before the day the firmware was built is
    never believed. The build writes that day into the compiled clock module: the day of the
    last commit, or SOURCE_DATE_EPOCH's (a reproducible build); never below the source's."""
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    source = int(
        re.search(r"^MIN_VALID = (\d+)", (ROOT / "lib/kpnthings/clock.py").read_text(), re.M)[1]
    )
    only_clock = ["kpnthings/__init__.py", "kpnthings/clock.py", "kpnthings/compat.py"]
    later = source + 40 * 86400 + 3600  # an hour into a day 40 days after the source's floor
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(later))
    build.compile_lib("armv6m", tmp_path / "a", modules=only_clock)
    assert _min_valid_of(tmp_path / "a") == source + 40 * 86400  # midnight UTC of that day
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(source - 86400))  # older than the source
    build.compile_lib("armv6m", tmp_path / "b", modules=only_clock)
    assert _min_valid_of(tmp_path / "b") == source
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True
    ).stdout.strip()
    build.compile_lib("xtensawin", tmp_path / "c", modules=only_clock)
    expected = max(source, int(commit) // 86400 * 86400) if commit.isdigit() else source
    assert _min_valid_of(tmp_path / "c") == expected
    with pytest.raises(build.BuildError, match="MIN_VALID"):
        build.stamp_build_day("MIN_VALIDITY = 5\n", later)


def test_stale_mpy_from_an_earlier_build_is_removed(tmp_path):
    out = tmp_path / "b"
    stale = out / "kpnthings" / "gone.mpy"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"M")
    build.compile_lib("armv6m", out)
    assert not stale.exists()


@pytest.mark.parametrize("board", ["esp32", "pico_w"])
def test_dry_run_cli_prints_the_plan_and_never_the_secret(tmp_path, ca_der, board):
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, board)
    proc = _cli(
        "deploy",
        "--dry-run",
        "--board",
        board,
        "--port",
        "/dev/ttyUSB9",
        "--config",
        str(cfg),
        "--ca",
        str(ca_der),
        "--build-dir",
        str(tmp_path / "b"),
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for dest in _expected_dests(board, config):
        assert ":" + dest in out
    assert "%d  :config.json" % cfg.stat().st_size in out.replace("  ", "  ")
    assert "mpremote connect /dev/ttyUSB9 run" in out
    assert config["secret"] not in out + proc.stderr
    assert not (tmp_path / "board").exists()


def test_dry_run_without_port_uses_a_placeholder(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32")
    plan = deploy.make_plan("esp32", cfg, ca=ca_der, dry_run=True, build_dir=tmp_path / "b")
    assert plan.commands()[0][:3] == ["mpremote", "connect", "PORT"]


# -- executed by a stand-in tool ------------------------------------------------------------


def test_ampy_execution_runs_each_command_in_order(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32")
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/null", ca=ca_der, tool="ampy", build_dir=tmp_path / "b"
    )
    tool = _fake_tool(tmp_path, "print('ok')")
    deploy.execute(plan, timeout=60, out=io.StringIO(), executable=str(tool))
    assert _calls(tmp_path) == [argv[1:] for argv in plan.commands()]


def test_execution_stops_at_the_first_failure(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32")
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/null", ca=ca_der, tool="ampy", build_dir=tmp_path / "b"
    )
    tool = _fake_tool(
        tmp_path,
        "if sys.argv[3] == 'put' and sys.argv[5] == 'lib/kpnthings/auth.mpy':\n"
        "    sys.exit('Error: could not enter raw repl')",
    )
    with pytest.raises(deploy.DeployError) as info:
        deploy.execute(plan, timeout=60, out=io.StringIO(), executable=str(tool))
    assert "ampy failed (exit 1): Error: could not enter raw repl" in str(info.value)
    calls = _calls(tmp_path)
    assert calls[-1][-1] == "lib/kpnthings/auth.mpy" and len(calls) < len(plan.commands())


def test_a_hung_transfer_ends_at_the_timeout(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32")
    plan = deploy.make_plan("esp32", cfg, port="/dev/null", ca=ca_der, build_dir=tmp_path / "b")
    tool = _fake_tool(tmp_path, "time.sleep(60)")
    with pytest.raises(deploy.DeployError) as info:
        deploy.execute(plan, timeout=1, out=io.StringIO(), executable=str(tool))
    assert "did not finish within 1 s" in str(info.value)
