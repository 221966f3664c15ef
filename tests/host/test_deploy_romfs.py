"""`kpnthings deploy` and ROMFS: the board's answer to `mpremote romfs query` decides between a
ROMFS image and .mpy files. The unix port answers for real (it has no ROMFS partition: .mpy
files); a board with a partition is the recorded output below, whose format this mpremote's own
query code reproduces. The image itself is mounted on the unix port (vfs.VfsRom) and the firmware
boots from it.
"""

import contextlib
import io
import json
import os
import re
import shutil
import subprocess

import pytest
from _deploy_support import (
    MICROPYTHON,
    ROOT,
    _assert_booted_clean,
    _calls,
    _error,
    _fake_tool,
    _module_dests,
    _write_config,
)

from kpnthings_tools import board_romfs, demo, deploy, emulator, modules, provision

# -- ROMFS: the board decides ---------------------------------------------------------------------

# What `mpremote romfs query` prints. QUERY_NO_ROMFS is the unix port's answer (checked for real
# below), as on stock ESP32_GENERIC and RPI_PICO_W firmware. QUERY_PARTITION is a board with a
# 128 KiB partition 0 that holds an earlier 47843-byte image: the values are made up, the text is
# what this mpremote's own query code prints for them (test_recorded_answers_...).
QUERY_NO_ROMFS = "ROMFS is not enabled on this device\n"
QUERY_NO_PARTITION = "No ROMFS partitions available\n"
QUERY_PARTITION = (
    "ROMFS0 partition has size 131072 bytes (32 blocks of 4096 bytes each)\n"
    "  Raw contents: d2:cd:31:80:82:f5:63:04:82:f5:5f:03 ...\n"
    "  ROMFS image size: 47843\n"
)


class _FakeBoard:
    """Answers mpremote's query expressions as a board would (mpremote/commands.py)."""

    def __init__(self, answers):
        self.answers = answers
        self.transport = self

    def ensure_raw_repl(self):
        pass

    def did_action(self):
        pass

    def exec(self, code):
        pass

    def eval(self, expr):
        return self.answers[expr]


@pytest.mark.parametrize(
    ("answers", "recorded"),
    [
        ({"hasattr(vfs,'rom_ioctl')": False}, QUERY_NO_ROMFS),
        ({"hasattr(vfs,'rom_ioctl')": True, "vfs.rom_ioctl(1)": 0}, QUERY_NO_PARTITION),
        (
            {
                "hasattr(vfs,'rom_ioctl')": True,
                "vfs.rom_ioctl(1)": 1,
                "isinstance(dev,int) and dev<0": False,
                "hasattr(dev,'ioctl')": False,
                "len(dev)": 131072,
                "vfs.rom_ioctl(6,0)": 4096,
                "bytes(memoryview(dev)[:12])": bytes.fromhex("d2cd318082f5630482f55f03"),
            },
            QUERY_PARTITION,
        ),
    ],
    ids=["no-romfs", "no-partition", "partition"],
)
def test_recorded_answers_are_what_this_mpremote_prints(answers, recorded):
    from mpremote import commands

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        commands._do_romfs_query(_FakeBoard(answers), None)
    assert out.getvalue() == recorded


def test_the_query_answers_are_read():
    assert board_romfs.parse_query(QUERY_NO_ROMFS).partition_size is None
    assert board_romfs.parse_query(QUERY_NO_ROMFS).said == QUERY_NO_ROMFS.strip()
    assert board_romfs.parse_query(QUERY_NO_PARTITION).partition_size is None
    answer = board_romfs.parse_query(QUERY_PARTITION)
    assert answer.has_partition and answer.partition_size == 131072
    # Deploy writes partition 0; a board with only another one has none for it.
    other = QUERY_PARTITION.replace("ROMFS0", "ROMFS1")
    assert board_romfs.parse_query(other).partition_size is None
    with pytest.raises(board_romfs.QueryError) as info:
        board_romfs.parse_query("mpremote: no device found\n")
    assert "no device found" in str(info.value)


def test_the_unix_port_answers_the_query_for_real(board_standin):
    _folder, port = board_standin
    proc = subprocess.run(
        [deploy.tool_executable("mpremote"), "connect", port, "resume", "romfs", "query"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == QUERY_NO_ROMFS
    assert not board_romfs.parse_query(proc.stdout).has_partition


def _romfs_plan(tmp_path, ca_der, romfs="auto", board="esp32", **kw):
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, board, **kw)
    plan = deploy.make_plan(
        board,
        cfg,
        port="/dev/ttyUSB0",
        ca=ca_der,
        dry_run=True,
        build_dir=tmp_path / "b",
        romfs=romfs,
    )
    return plan, cfg, config


def test_a_board_with_a_partition_gets_one_romfs_image_of_the_module_set(tmp_path, ca_der):
    plan, cfg, config = _romfs_plan(tmp_path, ca_der)
    assert plan.romfs == "auto" and not plan.uses_romfs
    chosen, why = deploy.decide_romfs(plan, QUERY_PARTITION)
    assert chosen.uses_romfs
    image = tmp_path / "b" / "library.romfs"
    assert why == (
        "board: ROMFS0 partition has size 131072 bytes -> writing the library as a "
        "%d-byte ROMFS image" % image.stat().st_size
    )
    [argv] = chosen.commands()
    assert argv == [
        "mpremote",
        "connect",
        "/dev/ttyUSB0",
        "run",
        str(tmp_path / "b" / "prepare_board_romfs.py"),
        "+",
        "romfs",
        "deploy",
        str(image),
        "+",
        "fs",
        "cp",
        str(ROOT / "firmware" / "boot.py"),
        ":boot.py",
        "+",
        "fs",
        "cp",
        str(ROOT / "firmware" / "main.py"),
        ":main.py",
        "+",
        "fs",
        "cp",
        str(cfg),
        ":config.json",
        "+",
        "fs",
        "cp",
        str(ca_der),
        ":ca.der",
        "+",
        "reset",
    ]
    # The image holds the module set and the board package, in the board's layout, and it is
    # exactly what mpremote builds from that tree.
    from mpremote.romfs import make_romfs

    tree = tmp_path / "b" / "romfs_tree"
    held = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())
    boards = ["lib/boards/__init__.mpy", "lib/boards/esp32.mpy", "lib/boards/esp32_pins.mpy"]
    assert held == sorted(_module_dests(config) + boards)
    with contextlib.redirect_stdout(io.StringIO()):
        assert image.read_bytes() == make_romfs(str(tree), mpy_cross=False)
    prepare = chosen.rom.prepare_script.read_text()
    compile(prepare, "prepare_board_romfs.py", "exec")
    assert "_drop('lib/kpnthings')" in prepare and "_drop('lib/boards')" in prepare
    # The .mpy way's script refuses to copy under an earlier ROMFS library that would shadow it.
    assert "/rom/lib/kpnthings" in plan.prepare_script.read_text()


def test_without_a_fitting_partition_the_mpy_files_go(tmp_path, ca_der):
    plan, _cfg, _config = _romfs_plan(tmp_path, ca_der)
    for answer, said in [
        (QUERY_NO_ROMFS, "board: ROMFS is not enabled on this device -> copying .mpy files"),
        (QUERY_NO_PARTITION, "board: No ROMFS partitions available -> copying .mpy files"),
        ("Traceback: garbled\n", "printed no partition size: Traceback: garbled: copying .mpy"),
        (
            QUERY_PARTITION.replace("131072", "4096"),
            "does not fit the board's partition (4096 bytes) -> copying .mpy files",
        ),
    ]:
        chosen, why = deploy.decide_romfs(plan, answer)
        assert not chosen.uses_romfs and said in why, why
        assert chosen.commands() == plan.commands()
        assert "romfs" not in chosen.commands()[0]


def test_romfs_yes_insists_and_romfs_no_never_asks(tmp_path, ca_der):
    plan, cfg, _config = _romfs_plan(tmp_path, ca_der, romfs="yes")
    assert plan.uses_romfs and "romfs" in plan.commands()[0]
    for answer, said in [
        (QUERY_NO_ROMFS, "the board says: ROMFS is not enabled"),
        (QUERY_PARTITION.replace("131072", "4096"), "does not fit"),
        ("garbled\n", "printed no partition size"),
    ]:
        with pytest.raises(deploy.DeployError) as info:
            deploy.decide_romfs(plan, answer)
        assert "--romfs yes" in str(info.value) and said in str(info.value)
    # ampy can neither ask nor write.
    msg = _error(tmp_path, config_path=cfg, port="/dev/x", ca=ca_der, tool="ampy", romfs="yes")
    assert "mpremote" in msg
    plan, _cfg, _config = _romfs_plan(tmp_path, ca_der, romfs="no")
    text = plan.render()
    assert plan.rom is None and "romfs query" not in text and "romfs deploy" not in text


def test_dry_run_shows_both_ways_for_auto_and_the_modules_with_their_reasons(tmp_path, ca_der):
    plan, _cfg, config = _romfs_plan(tmp_path, ca_der)
    text = plan.render()
    assert "mpremote connect /dev/ttyUSB0 romfs query" in text
    a, b = text.index("A. The board has no ROMFS partition"), text.index("B. The board reports")
    assert a < text.index("fs cp", a) < b < text.index("romfs deploy", b)
    for rel, why in modules.module_set(config):
        assert re.search(r"\d+  %s +%s\n" % (re.escape(rel), re.escape(why)), text), rel
    for rel, why in modules.left_out(config):
        assert re.search(r"-  %s +%s\n" % (re.escape(rel), re.escape(why)), text), rel
    assert "kpnthings/mqtt_transport.py" in text.split("left out:")[1]


def test_execute_asks_the_board_then_writes_the_image(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32")
    plan = deploy.make_plan("esp32", cfg, port="/dev/null", ca=ca_der, build_dir=tmp_path / "b")
    tool = _fake_tool(
        tmp_path,
        "if sys.argv[-2:] == ['romfs', 'query']:\n    sys.stdout.write(%r)\n" % QUERY_PARTITION,
    )
    out = io.StringIO()
    deploy.execute(plan, timeout=60, out=out, executable=str(tool))
    chosen, _why = deploy.decide_romfs(plan, QUERY_PARTITION)
    assert _calls(tmp_path) == [plan.query_command()[1:], chosen.commands()[0][1:]]
    assert "writing the library as a" in out.getvalue()
    assert "deployed a %d-byte ROMFS image" % chosen.rom.image.size in out.getvalue()


# Mounts the image as a board mounts its ROMFS partition and boots firmware/main.py, with the
# board's sys.path order; then says where each library module came from.
ROMFS_BOOT = """\
import os, sys, vfs
vfs.mount(vfs.VfsRom(open(os.getenv("ROM_IMG"), "rb").read()), "/rom")
sys.path[:] = ["", ".frozen", "/rom", "/rom/lib", os.getenv("FAKES")]
exec(open("main.py").read(), {"__name__": "__main__"})
for name in sorted(sys.modules):
    if name.startswith("kpnthings") or name.startswith("boards"):
        print("[from]", name, sys.modules[name].__file__)
"""


def test_the_firmware_boots_from_the_romfs_image(tmp_path):
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    ident = provision.new_identity("romfs")
    emu = emulator.Emulator(":memory:", [(ident.dvnuuid, ident.secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        config = demo.demo_config(ident.dvnuuid, ident.secret, server.url, 2, 1)
        cfg = tmp_path / "device.json"
        cfg.write_text(json.dumps(config))
        plan = deploy.make_plan(
            "unix", cfg, dry_run=True, romfs="yes", build_dir=tmp_path / "b", resume=True
        )
        folder = tmp_path / "board"
        for item in plan.rom.items:  # the filesystem holds no library at all
            target = folder / item.dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.src, target)
        runner = tmp_path / "romfs_boot.py"
        runner.write_text(ROMFS_BOOT)
        env = {k: v for k, v in os.environ.items() if k != "KPN_CONFIG"}
        env.update(
            ROM_IMG=str(plan.rom.image.src), FAKES=str(ROOT / "tests" / "fakes"), MICROPYPATH=""
        )
        run = subprocess.run(
            [MICROPYTHON, str(runner)],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        _assert_booted_clean(run, 2)
        assert [m["outcome"] for m in emu.messages(ident.dvnuuid)] == ["accepted", "accepted"]
    finally:
        server.shutdown()
    loaded = [line.split()[1:] for line in run.stdout.splitlines() if line.startswith("[from]")]
    assert ["kpnthings.app", "/rom/lib/kpnthings/app.mpy"] in loaded
    assert ["boards.unix", "/rom/lib/boards/unix.mpy"] in loaded
    assert all(path.startswith("/rom/lib/") for _name, path in loaded), loaded
