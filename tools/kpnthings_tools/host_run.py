"""Run the firmware on this computer: firmware/main.py on the MicroPython unix port.

    python -m kpnthings_tools.host_run config.json

The config must say "board": "unix" (simulated pins and sensors, no Wi-Fi). This is the same
firmware that goes onto a board; only the fake `machine`/`network` modules from tests/fakes stand
in for the hardware. Exit status is the firmware's own (1 for a bad config).
"""

import argparse
import os
import subprocess
import sys

from . import demo


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kpnthings_tools.host_run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("config", help='config.json with "board": "unix"')
    args = parser.parse_args(argv)
    config = os.path.abspath(args.config)
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
