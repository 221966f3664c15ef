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
    try:
        return subprocess.call([binary, str(demo.FIRMWARE)], env=demo.firmware_env(config))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
