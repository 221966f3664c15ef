"""Run the firmware on this computer: firmware/main.py on the MicroPython unix port.

    python -m kpnthings_tools.host_run config.json

The config must say "board": "unix" (simulated pins and sensors, no Wi-Fi). This is the same
firmware that goes onto a board; only the fake `machine`/`network` modules from tests/fakes stand
in for the hardware. The config first passes the full check deploy runs (`kpnthings
check-config`); a mistake stops here with the line the firmware prints, `config error (PATH):
FIELD: ...`, and exit status 1. `--no-check` skips it, to watch the board's own short check.
Otherwise the exit status is the firmware's own (1 for a bad config).
"""

import argparse
import os
import signal
import subprocess
import sys

from . import config_check, demo


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kpnthings_tools.host_run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("config", help='config.json with "board": "unix"')
    parser.add_argument(
        "--no-check", action="store_true", help="boot even a config the full check refuses"
    )
    args = parser.parse_args(argv)
    config = os.path.abspath(args.config)
    if not args.no_check:
        try:
            _, unknown = config_check.check_file(config)
        except config_check.ConfigError as e:
            print("config error (%s): %s" % (config, e))
            return 1
        for key in unknown:  # the firmware names them too, at boot
            print("host_run: warning: unknown key %r in %s" % (key, config), file=sys.stderr)
    try:
        binary = demo.micropython_binary()
    except demo.DemoError as e:
        print("host_run: %s" % e, file=sys.stderr)
        return 2
    return run_firmware([binary, str(demo.FIRMWARE)], demo.firmware_env(config))


def _die_with_parent():
    # Linux: the firmware gets SIGKILL when this process dies, however it dies (kill -9 too).
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the handlers in run_firmware cover kill and Ctrl-C


def run_firmware(cmd, env):
    """Run the firmware as a child that never outlives this process: `kill PID` (SIGTERM),
    SIGHUP (a closed terminal) and Ctrl-C stop it too, and on Linux so does `kill -9`. Before,
    killing host_run by its PID left the firmware running, and sending."""
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    child = subprocess.Popen(cmd, env=env, preexec_fn=preexec)

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            saved[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: only its own Ctrl-C and the finally below
            pass
    try:
        return child.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


if __name__ == "__main__":
    sys.exit(main())
