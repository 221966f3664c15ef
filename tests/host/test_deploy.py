"""`kpnthings deploy`: the plan and exact command lines for both boards, every user error, a
real mpremote deploy into the MicroPython unix port standing in for a board (socat bridge,
PROTOCOL.md), after which the firmware starts from the folder the files landed in, and the firmware
booted from exactly the module set a plan copies, for every example config and for MQTT.

ROMFS: the board's answer to `mpremote romfs query` decides between a ROMFS image and .mpy
files. The unix port answers for real (it has no ROMFS partition: .mpy files); a board with a
partition is the recorded output below, whose format this mpremote's own query code reproduces.
The image itself is mounted on the unix port (vfs.VfsRom) and the firmware boots from it.
"""

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kpnthings_tools import board_romfs, build, demo, deploy, emulator, modules, provision

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MICROPYTHON = shutil.which("micropython", path=str(VENV_BIN)) or shutil.which("micropython")


def _lib_modules():
    lib = ROOT / "lib"
    return sorted(
        p.relative_to(lib).as_posix()
        for p in (lib / "kpnthings").rglob("*.py")
        if "__pycache__" not in p.parts
    )


def _write_config(path, board, **kw):
    ident = provision.new_identity("bench-1")
    config = provision.build_config(
        ident, board=board, wifi_ssid="" if board == "unix" else "Lab", **kw
    )
    path.write_text(json.dumps(config))
    return config


@pytest.fixture(scope="module")
def ca_der(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    pem = trustme.CA().cert_pem.bytes().decode()
    path = tmp_path_factory.mktemp("ca") / "kpn-ca.der"
    path.write_bytes(ssl.PEM_cert_to_DER_cert(pem))
    return path


@pytest.fixture
def esp32_config(tmp_path):
    path = tmp_path / "device.json"
    config = _write_config(path, "esp32")  # https, ca_file ca.der: the secure default
    return path, config


def _module_dests(config):
    """Where the config's module set lands on the board, worked out by kpnthings_tools.modules."""
    return ["lib/" + rel[: -len(".py")] + ".mpy" for rel, _why in modules.module_set(config)]


def _expected_dests(board, config, with_ca=True):
    dests = _module_dests(config)
    dests += ["lib/boards/__init__.mpy", "lib/boards/%s.mpy" % board]
    if board == "esp32":  # its pin rules, read by the config check at boot
        dests.append("lib/boards/esp32_pins.mpy")
    dests += ["boot.py", "main.py", "config.json"]
    if with_ca:
        dests.append("ca.der")
    return dests


# -- the plan and its command lines ------------------------------------------------------------


@pytest.mark.parametrize(("board", "arch"), [("esp32", "xtensawin"), ("pico_w", "armv6m")])
def test_plan_lists_every_file_with_size_and_destination(tmp_path, ca_der, board, arch):
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, board)
    plan = deploy.make_plan(
        board, cfg, port="/dev/ttyACM0", ca=ca_der, dry_run=True, build_dir=tmp_path / "b"
    )
    assert plan.arch == arch
    assert sorted(i.dest for i in plan.items) == sorted(_expected_dests(board, config))
    # An HTTPS config without sensors: no MQTT, sensor or deep-sleep code goes to the board.
    assert not [
        d for d in plan.items if re.match(r"lib/kpnthings/(mqtt|sensors|deepsleep)", d.dest)
    ]
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


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "kpnthings_tools.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=120,
    )


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


# -- clear errors ------------------------------------------------------------------------------


def _error(tmp_path, board="esp32", **kw):
    kw.setdefault("build_dir", tmp_path / "b")
    with pytest.raises(deploy.DeployError) as info:
        deploy.make_plan(board, **kw)
    return str(info.value)


def test_wrong_board(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, board="esp8266", config_path=esp32_config[0], port="/dev/x", ca=ca_der)
    assert "esp8266" in msg and "esp32" in msg and "pico_w" in msg


def test_config_for_another_board(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, board="pico_w", config_path=esp32_config[0], dry_run=True, ca=ca_der)
    assert '"board": "esp32"' in msg and "pico_w" in msg


def test_missing_port(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, config_path=esp32_config[0], ca=ca_der)
    assert "--port is required" in msg


def test_port_that_does_not_exist(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, config_path=esp32_config[0], port="/dev/ttyNOPE42", ca=ca_der)
    assert "/dev/ttyNOPE42 does not exist" in msg


def test_ampy_cannot_use_a_socket(tmp_path, esp32_config, ca_der):
    msg = _error(
        tmp_path, config_path=esp32_config[0], port="socket://127.0.0.1:9", ca=ca_der, tool="ampy"
    )
    assert "ampy" in msg and "--tool mpremote" in msg


def test_missing_config(tmp_path, ca_der):
    msg = _error(tmp_path, config_path=tmp_path / "nope.json", dry_run=True, ca=ca_der)
    assert "nope.json not found" in msg


def test_bad_config_names_the_field_and_never_the_secret(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, "esp32")
    config["interval_s"] = "often"
    cfg.write_text(json.dumps(config))
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert "interval_s" in msg and config["secret"] not in msg
    config["interval_s"] = 60
    config["secret"] = config["secret"][:20] + "!" + config["secret"][21:]
    cfg.write_text(json.dumps(config))
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert "secret" in msg and config["secret"] not in msg
    cfg.write_text('{"dvnuuid": ')
    assert "JSON" in _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)


def test_esp32_pin_rules_refuse_or_warn_before_anything_is_copied(tmp_path, ca_der, capsys):
    # Issue 17 #10: deploy runs the full check with the board's pin rules (boards/esp32_pins.py).
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, "esp32")
    config["sensors"] = [{"type": "counter", "pin": 36}]
    cfg.write_text(json.dumps(config))
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert 'sensors[0] (counter): field "pin": pin 36 has no pull resistors' in msg, msg
    config["sensors"] = [{"type": "digital", "pin": 16}]  # free on WROOM, PSRAM on WROVER
    cfg.write_text(json.dumps(config))
    deploy.make_plan("esp32", cfg, dry_run=True, ca=ca_der, build_dir=tmp_path / "b")
    err = capsys.readouterr().err
    assert err.startswith("kpnthings deploy: warning: config %s: sensors[0] (digital)" % cfg)
    assert "pin 16 may not be free" in err and "WROVER" in err


def test_https_without_ca_is_refused_unless_insecure(tmp_path, esp32_config, ca_der):
    msg = _error(tmp_path, config_path=esp32_config[0], dry_run=True)
    assert "--ca" in msg and "tls_insecure" in msg
    insecure = tmp_path / "insecure.json"
    _write_config(insecure, "esp32", tls_insecure=True)
    plan = deploy.make_plan("esp32", insecure, dry_run=True, build_dir=tmp_path / "b")
    assert "ca.der" not in [i.dest for i in plan.items]


def test_ca_beside_the_config_is_found(tmp_path, esp32_config, ca_der):
    shutil.copy(ca_der, esp32_config[0].parent / "ca.der")
    plan = deploy.make_plan("esp32", esp32_config[0], dry_run=True, build_dir=tmp_path / "b")
    assert [i.src for i in plan.items if i.dest == "ca.der"] == [esp32_config[0].parent / "ca.der"]


def test_pem_or_junk_ca_is_refused(tmp_path, esp32_config, ca_der):
    pem = tmp_path / "ca.pem"
    pem.write_text(ssl.DER_cert_to_PEM_cert(ca_der.read_bytes()))
    msg = _error(tmp_path, config_path=esp32_config[0], dry_run=True, ca=pem)
    assert "PEM" in msg and "openssl x509" in msg and "-outform DER" in msg
    junk = tmp_path / "junk.der"
    junk.write_bytes(b"hello")
    assert "not a DER certificate" in _error(
        tmp_path, config_path=esp32_config[0], dry_run=True, ca=junk
    )
    assert "not found" in _error(
        tmp_path, config_path=esp32_config[0], dry_run=True, ca=tmp_path / "none.der"
    )


def test_ca_file_must_point_where_deploy_puts_it(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "esp32", ca_file="certs/kpn.der")
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert '"ca_file": "ca.der"' in msg


def _ca_files_config(path, board="esp32", **keys):
    """A config from new-device with `keys` set on top (None removes the key)."""
    config = _write_config(path, board)
    for key, value in keys.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))
    return config


def test_ca_files_are_copied_beside_the_config(tmp_path, ca_der):
    # The next root, deployed beside the current one before the server switches (issue 19).
    cfg = tmp_path / "device.json"
    _ca_files_config(cfg, ca_files=["ca-next.der"])
    shutil.copy(ca_der, tmp_path / "ca.der")
    shutil.copy(ca_der, tmp_path / "ca-next.der")
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/ttyUSB0", dry_run=True, build_dir=tmp_path / "b"
    )
    cas = [(i.src, i.dest) for i in plan.items if i.kind == "ca"]
    assert cas == [(tmp_path / "ca.der", "ca.der"), (tmp_path / "ca-next.der", "ca-next.der")]
    [argv] = plan.commands()
    assert argv[-6:] == ["fs", "cp", str(tmp_path / "ca-next.der"), ":ca-next.der", "+", "reset"]
    # ca_files alone is a CA for https: no --ca needed, and none is invented.
    _ca_files_config(cfg, ca_file=None, ca_files=["ca-next.der"])
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/ttyUSB0", dry_run=True, build_dir=tmp_path / "b"
    )
    assert [i.dest for i in plan.items if i.kind == "ca"] == ["ca-next.der"]


def test_the_brokers_own_ca_is_copied_beside_the_config(tmp_path, ca_der):
    # mqtt_ca_file (the broker's CA, when it is not ca_file's) was never copied: an MQTT config
    # that used it stopped at boot with "mqtt_ca_file: cannot read".
    cfg = tmp_path / "device.json"
    _ca_files_config(
        cfg,
        ca_file=None,
        transport="mqtt",
        mqtt_host="broker.example",
        mqtt_uplink_topic="kpn/{dvnuuid}/up",
        mqtt_ca_file="broker-ca.der",
    )
    shutil.copy(ca_der, tmp_path / "broker-ca.der")
    plan = deploy.make_plan(
        "esp32", cfg, port="/dev/ttyUSB0", dry_run=True, build_dir=tmp_path / "b"
    )
    assert [(i.src, i.dest) for i in plan.items if i.kind == "ca"] == [
        (tmp_path / "broker-ca.der", "broker-ca.der")
    ]
    _ca_files_config(
        cfg,
        ca_file=None,
        transport="mqtt",
        mqtt_host="broker.example",
        mqtt_uplink_topic="kpn/{dvnuuid}/up",
        mqtt_ca_file="certs/broker.der",
    )
    msg = _error(tmp_path, config_path=cfg, dry_run=True)
    assert "mqtt_ca_file" in msg and "ending in .der, without folders" in msg, msg


def test_ca_files_must_be_der_files_beside_the_config(tmp_path, ca_der):
    cfg = tmp_path / "device.json"
    shutil.copy(ca_der, tmp_path / "ca.der")
    for name in ("certs/next.der", "../next.der", "next.pem", ".next.der", "config.json"):
        _ca_files_config(cfg, ca_files=[name])
        msg = _error(tmp_path, config_path=cfg, dry_run=True)
        assert "ca_files" in msg and "ending in .der, without folders" in msg, (name, msg)
    _ca_files_config(cfg, ca_files=["next.der"])
    msg = _error(tmp_path, config_path=cfg, dry_run=True)
    assert "ca_files: CA file %s not found" % (tmp_path / "next.der") in msg
    (tmp_path / "next.der").write_text(ssl.DER_cert_to_PEM_cert(ca_der.read_bytes()))
    msg = _error(tmp_path, config_path=cfg, dry_run=True)
    assert "is PEM" in msg and "-outform DER" in msg
    (tmp_path / "next.der").write_bytes(ca_der.read_bytes()[:-20])  # a download cut short
    assert "is not DER certificates" in _error(tmp_path, config_path=cfg, dry_run=True)
    # --ca goes to ca.der: a ca_files entry of that name would be overwritten.
    _ca_files_config(cfg, ca_files=["ca.der"], ca_file=None, tls_insecure=True)
    msg = _error(tmp_path, config_path=cfg, dry_run=True, ca=ca_der)
    assert "ca_files: ca.der is where ca_file's CA goes" in msg


def test_cli_reports_errors_on_stderr_with_status_2(tmp_path):
    proc = _cli(
        "deploy", "--board", "esp32", "--config", str(tmp_path / "missing.json"), "--dry-run"
    )
    assert proc.returncode == 2
    assert "missing.json not found" in proc.stderr and proc.stdout == ""


# -- for real: mpremote into the unix port over socat ------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def board_standin(tmp_path):
    """A folder that plays the board's filesystem, behind socat + the unix port's raw REPL."""
    socat = shutil.which("socat")
    if not socat:
        pytest.skip(
            "socat is not installed (apt-get install socat): without it there is no "
            "board stand-in for mpremote; the plan and command tests above still ran"
        )
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    folder = tmp_path / "board"
    folder.mkdir()
    for _attempt in range(5):
        port = _free_port()
        # nodelay: without it Nagle's algorithm delays each raw-REPL round trip by ~40 ms and a
        # deploy takes several times longer.
        proc = subprocess.Popen(
            [
                socat,
                "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,nodelay" % port,
                "EXEC:%s,pty,raw,echo=0" % MICROPYTHON,
            ],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # socat forks one child per connection: stop them together
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("socat could not listen on a free port")
    try:
        yield folder, "socket://127.0.0.1:%d" % port
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def test_deploy_for_real_into_the_unix_port(tmp_path, board_standin):
    folder, port = board_standin
    cfg = tmp_path / "device.json"
    config = _write_config(cfg, "unix", url="http://127.0.0.1:9")
    args = (
        "deploy",
        "--board",
        "unix",
        "--port",
        port,
        "--resume",
        "--config",
        str(cfg),
        "--build-dir",
        str(tmp_path / "b"),
    )
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert config["secret"] not in proc.stdout + proc.stderr
    # --romfs auto asked the board first; the unix port has no ROMFS: .mpy files.
    assert "romfs query" in proc.stdout
    assert "board: ROMFS is not enabled on this device -> copying .mpy files" in proc.stdout
    assert "romfs deploy" not in proc.stdout.split("copying .mpy files", 1)[1]
    # Every file landed, byte for byte, from the build folder this very deploy wrote, and no
    # library module outside the config's set.
    sources = {
        "boot.py": ROOT / "firmware" / "boot.py",
        "main.py": ROOT / "firmware" / "main.py",
        "config.json": cfg,
    }
    expected = _expected_dests("unix", config, with_ca=False)
    for dest in expected:
        src = sources.get(dest, tmp_path / "b" / dest)
        assert (folder / dest).read_bytes() == src.read_bytes(), dest
    on_board = sorted(p.relative_to(folder).as_posix() for p in (folder / "lib").rglob("*.mpy"))
    assert on_board == sorted(d for d in expected if d.startswith("lib/"))

    # A second deploy removes what an earlier install left in the folders deploy owns (a stale
    # client.py would shadow client.mpy; a driver folder an earlier config needed takes flash)
    # and keeps everything else.
    (folder / "lib" / "kpnthings" / "client.py").write_text("raise ImportError('stale')\n")
    (folder / "lib" / "kpnthings" / "sensors").mkdir()
    (folder / "lib" / "kpnthings" / "sensors" / "dht.mpy").write_bytes(b"M")
    (folder / "lib" / "boards" / "esp32.mpy").write_bytes(b"M")
    (folder / "lib" / "other.py").write_text("KEEP = 1\n")
    (folder / "data.txt").write_text("user data\n")
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "removed stale lib/kpnthings/client.py" in proc.stdout
    assert "removed stale lib/kpnthings/sensors" in proc.stdout
    assert not (folder / "lib" / "kpnthings" / "client.py").exists()
    assert not (folder / "lib" / "kpnthings" / "sensors").exists()
    assert not (folder / "lib" / "boards" / "esp32.mpy").exists()
    assert (folder / "lib" / "other.py").exists() and (folder / "data.txt").exists()
    assert (folder / "config.json").read_bytes() == cfg.read_bytes()


def test_deploy_to_a_port_with_no_board_fails_clearly(tmp_path):
    cfg = tmp_path / "device.json"
    _write_config(cfg, "unix", url="http://127.0.0.1:9")
    port = _free_port()  # nothing listens there
    proc = _cli(
        "deploy",
        "--board",
        "unix",
        "--port",
        "socket://127.0.0.1:%d" % port,
        "--resume",
        "--config",
        str(cfg),
        "--build-dir",
        str(tmp_path / "b"),
        "--timeout",
        "60",
    )
    assert proc.returncode == 2
    assert "mpremote failed" in proc.stderr


def test_firmware_starts_from_the_deployed_files(tmp_path, board_standin):
    """After a deploy, the folder alone (plus the host's fake machine/network) runs the firmware:
    boot from :main.py, import the .mpy library from :lib, read :config.json, send to KPN."""
    from kpnthings_tools import emulator

    folder, port = board_standin
    ident = provision.new_identity("bench-1")
    emu = emulator.Emulator(":memory:", [(ident.dvnuuid, ident.secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        config = provision.build_config(ident, url=server.url, board="unix", interval_s=1, cycles=2)
        cfg = tmp_path / "device.json"
        cfg.write_text(json.dumps(config))
        proc = _cli(
            "deploy",
            "--board",
            "unix",
            "--port",
            port,
            "--resume",
            "--config",
            str(cfg),
            "--build-dir",
            str(tmp_path / "b"),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # Only the fakes come from the repo; every kpnthings module comes from the board folder.
        env = {k: v for k, v in os.environ.items() if k != "KPN_CONFIG"}
        env["MICROPYPATH"] = "%s:%s:.frozen" % (ROOT / "tests" / "fakes", folder / "lib")
        run = subprocess.run(
            [MICROPYTHON, "main.py"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "[boot] kpnthings" in run.stdout and ident.dvnuuid in run.stdout
        assert ident.secret not in run.stdout + run.stderr
        messages = emu.messages(ident.dvnuuid)
        assert len(messages) == 2
        assert [m["outcome"] for m in messages] == ["accepted", "accepted"]
    finally:
        server.shutdown()


def test_a_new_identity_deployed_over_a_board_sends_the_old_ones_readings_under_it(
    tmp_path, board_standin
):
    """Issue 19: a board that queued readings as device A (KPN out of reach) is re-provisioned
    over its own config (`new-device --force --previous`) and deployed again as device B: the
    module that sends them goes to the board with that config only, and at the next boot A's
    readings go out under A, B's under B."""
    from kpnthings.outbox import Outbox

    folder, port = board_standin
    cfg = tmp_path / "device.json"
    dead = "http://127.0.0.1:%d" % _free_port()
    new_device = ("new-device", "--board", "unix", "--interval", "1", "--cycles", "2")
    proc = _cli(*new_device, "--url", dead, "--config-out", str(cfg))
    assert proc.returncode == 0, proc.stderr
    old = json.loads(cfg.read_text())
    deploy_args = ("deploy", "--board", "unix", "--port", port, "--resume", "--config", str(cfg))
    deploy_args += ("--build-dir", str(tmp_path / "b"))
    proc = _cli(*deploy_args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    handover = folder / "lib" / "kpnthings" / "outbox_handover.mpy"
    assert not handover.exists()  # nothing in this config needs it
    env = {k: v for k, v in os.environ.items() if k != "KPN_CONFIG"}
    env["MICROPYPATH"] = "%s:%s:.frozen" % (ROOT / "tests" / "fakes", folder / "lib")
    run = subprocess.run(
        [MICROPYTHON, "main.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    queued = Outbox(str(folder / "outbox")).peek(100)
    assert len(queued) == 6, run.stdout  # 2 cycles of 3 readings, none sent

    emu = emulator.Emulator(":memory:", [(old["dvnuuid"], old["secret"])], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        again = (*new_device, "--url", server.url, "--config-out", str(cfg), "--force")
        proc = _cli(*again, "--previous", str(cfg))
        assert proc.returncode == 0, proc.stderr
        new = json.loads(cfg.read_text())
        assert new["previous_identities"] == [{"dvnuuid": old["dvnuuid"], "secret": old["secret"]}]
        emu.add_device(new["dvnuuid"], new["secret"])
        proc = _cli(*deploy_args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert old["secret"] not in proc.stdout + proc.stderr
        assert (
            handover.read_bytes()
            == (tmp_path / "b" / "lib/kpnthings/outbox_handover.mpy").read_bytes()
        )
        run = subprocess.run(
            [MICROPYTHON, "main.py"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        sent_old, sent_new = emu.messages(old["dvnuuid"]), emu.messages(new["dvnuuid"])
    finally:
        server.shutdown()
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert [m["outcome"] for m in sent_old] == ["accepted"], out
    base = "urn:dev:DVNUUID:%s:" % old["dvnuuid"]
    assert [(r["n"], r["v"]) for r in sent_old[0]["records"]] == [
        (base + r["n"], r["v"]) for r in queued
    ]
    assert [m["outcome"] for m in sent_new] == ["accepted", "accepted"], out
    assert "every reading of device %s sent; folder removed" % old["dvnuuid"] in out
    assert not (folder / ("outbox-" + old["dvnuuid"][:8])).exists()
    assert old["secret"] not in out and new["secret"] not in out


def _fake_tool(tmp_path, body):
    """A stand-in for mpremote/ampy that logs its argv, one JSON line per call."""
    script = tmp_path / "fake_tool.py"
    script.write_text(
        "#!%s\nimport json, sys, time\nlog = %r\n"
        "with open(log, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n%s\n"
        % (sys.executable, str(tmp_path / "calls.log"), body)
    )
    script.chmod(0o755)
    return script


def _calls(tmp_path):
    path = tmp_path / "calls.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


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


# -- the firmware boots from exactly the set a plan copies ----------------------------------------


def _lay_out(plan, folder):
    """The board's filesystem after the plan's .mpy way: every file at its destination."""
    for item in plan.items:
        target = folder / item.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.src, target)
    return folder


def _boot(folder, timeout=60):
    """firmware main.py from the laid-out folder: the library comes from folder/lib and nowhere
    else (only the fake machine/network/sensor buses and the port's frozen modules beside it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KPN_CONFIG", "MICROPYPATH")}
    env["MICROPYPATH"] = "%s:%s:.frozen" % (ROOT / "tests" / "fakes", folder / "lib")
    return subprocess.run(
        [MICROPYTHON, "main.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _plan_for(tmp_path, config):
    cfg = tmp_path / "device.json"
    cfg.write_text(json.dumps(config))
    return deploy.make_plan(
        "unix", cfg, dry_run=True, romfs="no", build_dir=tmp_path / "build", resume=True
    )


def _assert_booted_clean(run, cycles):
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "ImportError" not in out and "no module named" not in out.lower(), out
    assert "[boot] done after %d cycles" % cycles in run.stdout, out


EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_config_boots_from_its_module_set(tmp_path, example):
    """The example's keys merged into the demo's HTTP config for the unix board (as `make demo
    DEMO_CONFIG=...`), deployed as the plan says, run against the local emulator."""
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    extra = json.loads(example.read_text())
    ident = provision.new_identity("example")
    emu = emulator.Emulator(":memory:", [(ident.dvnuuid, ident.secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0)
    try:
        config = demo.demo_config(ident.dvnuuid, ident.secret, server.url, 2, 1, extra)
        plan = _plan_for(tmp_path, config)
        assert [i.dest for i in plan.library_items()] == _module_dests(config)
        run = _boot(_lay_out(plan, tmp_path / "board"))
        _assert_booted_clean(run, 2)
        messages = emu.messages(ident.dvnuuid)
        assert [m["outcome"] for m in messages] == ["accepted", "accepted"], run.stdout
        # Every sensor the example names was read through its driver from the deployed set.
        bodies = " ".join(m["body"] for m in messages)
        for entry in extra.get("sensors", ()):
            if "name" in entry:
                assert '"%s"' % entry["name"] in bodies, (entry, bodies)
        assert "sensorErrors" not in bodies, run.stdout
    finally:
        server.shutdown()
    assert ident.secret not in run.stdout + run.stderr


def test_the_https_set_is_the_http_set_that_boots():
    """The TLS code lives in the same modules as plain HTTP, so the HTTP boots above cover the
    HTTPS set; the ESP32 and Pico W sets differ from the unix one only by the board's imports."""
    ident = provision.new_identity("x")
    https = provision.build_config(ident, board="unix")
    http = dict(https, url="http://127.0.0.1:1", ca_file=None)
    assert https["url"].startswith("https://")
    assert dict(modules.module_set(https)).keys() == dict(modules.module_set(http)).keys()


def _mqtt_config(tmp_path, broker_port, user="u", password="p"):
    ident = provision.new_identity("mqtt")
    return ident, {
        "dvnuuid": ident.dvnuuid,
        "secret": ident.secret,
        "board": "unix",
        "interval_s": 1,
        "cycles": 2,
        "timeout_s": 2,
        "transport": "mqtt",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker_port,
        "mqtt_tls": False,
        "mqtt_username": user,
        "mqtt_password": password,
        "mqtt_uplink_topic": "kpn/{dvnuuid}/up",
        "mqtt_downlink_topic": "kpn/{dvnuuid}/down",
    }


def test_an_mqtt_config_boots_from_its_module_set_without_a_broker(tmp_path):
    """Nothing listens on the port: the firmware boots, tries to connect, keeps its readings in
    the outbox and ends cleanly after its cycles, all from the MQTT module set."""
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    ident, config = _mqtt_config(tmp_path, _free_port())
    plan = _plan_for(tmp_path, config)
    assert any(i.dest == "lib/kpnthings/mqtt.mpy" for i in plan.items)
    run = _boot(_lay_out(plan, tmp_path / "board"))
    _assert_booted_clean(run, 2)
    assert "mqtt 127.0.0.1:%d" % config["mqtt_port"] in run.stdout
    assert "retry" in run.stdout and "accepted" not in run.stdout, run.stdout
    assert list((tmp_path / "board" / "outbox").iterdir()), "readings were not kept"
    assert ident.secret not in run.stdout + run.stderr


def test_an_mqtt_config_boots_from_its_module_set_against_mosquitto(tmp_path):
    from mqtt_broker import Broker, mosquitto_path

    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    if mosquitto_path() is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs Debian's mosquitto package; the broker-less MQTT boot above still ran")
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Broker(folder).start()
    try:
        ident, config = _mqtt_config(tmp_path, broker.port, broker.user, broker.password)
        run = _boot(_lay_out(_plan_for(tmp_path, config), tmp_path / "board"))
    finally:
        broker.close()
    _assert_booted_clean(run, 2)
    assert run.stdout.count("-> accepted") == 2, run.stdout
    assert ident.secret not in run.stdout + run.stderr


def test_the_deployed_ca_files_verify_a_server_that_switched_roots(tmp_path):
    """ca_file holds the root the server used (A), ca_files the one it switched to (B): the
    board laid out from the plan verifies the server over HTTPS with B (issue 19)."""
    from kpnthings_tools.bench import pki

    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    chains = pki.make_chains(tmp_path / "pki")
    shutil.copy(chains["rsa"].ca_der, tmp_path / "ca.der")
    shutil.copy(chains["ec"].ca_der, tmp_path / "ca-next.der")
    ident = provision.new_identity("next-root")
    emu = emulator.Emulator(":memory:", [(ident.dvnuuid, ident.secret)], log=lambda line: None)
    server = emu.serve(tls_cert=str(chains["ec"].cert), tls_key=str(chains["ec"].key))
    try:
        config = demo.demo_config(ident.dvnuuid, ident.secret, server.url, 2, 1)
        config.update(ca_file="ca.der", ca_files=["ca-next.der"])
        plan = _plan_for(tmp_path, config)
        assert [i.dest for i in plan.items if i.kind == "ca"] == ["ca.der", "ca-next.der"]
        run = _boot(_lay_out(plan, tmp_path / "board"))
        _assert_booted_clean(run, 2)
        assert [m["outcome"] for m in emu.messages(ident.dvnuuid)] == ["accepted"] * 2
    finally:
        server.shutdown()


def test_an_mqtt_tls_config_trusts_its_ca_files_against_mosquitto(tmp_path):
    """The broker's CA in ca_files, an unrelated root in ca_file: MQTT over TLS gets both."""
    import trustme
    from mqtt_broker import Broker, mosquitto_path

    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    if mosquitto_path() is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs Debian's mosquitto package")
    folder = tmp_path / "broker"
    folder.mkdir()
    broker = Broker(folder).start()
    try:
        ident, config = _mqtt_config(tmp_path, broker.tls_port, broker.user, broker.password)
        other = ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode())
        (tmp_path / "ca.der").write_bytes(other)
        shutil.copy(broker.ca_der_path, tmp_path / "broker-ca.der")
        config.update(mqtt_tls=True, ca_file="ca.der", ca_files=["broker-ca.der"])
        run = _boot(_lay_out(_plan_for(tmp_path, config), tmp_path / "board"))
    finally:
        broker.close()
    _assert_booted_clean(run, 2)
    assert run.stdout.count("bytes -> accepted") == 2, run.stdout
    assert ident.secret not in run.stdout + run.stderr


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
    assert "kpnthings/deepsleep.py" in text.split("left out:")[1]


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
