"""The `kpnthings` command: new device identities, tokens, one-off sends, and the local emulator.

    kpnthings new-device [--name N] [--url URL] [--config-out PATH] [--previous OLD.json]
    kpnthings new-device --count N --out DIR [--name PREFIX] ...   (fleet: configs + Portal CSV)
    kpnthings token --secret S FILE|-
    kpnthings send --config config.json [name=value ...]
    kpnthings mock-server --port P --device UUID:SECRET[:NAME] [--device ...] [--db PATH]
                          [--host 0.0.0.0] [--api-token TOKEN]   (a token guards the API)
    kpnthings downlink DEVICE led=true [--wait S]   (queue on the emulator; wait for the answer)
    kpnthings messages DEVICE [--since ID]          (what the emulator received from the device)
    kpnthings deploy --port PORT --board esp32|pico_w --config device.json [--ca kpn-ca.der]
                     [--romfs auto|yes|no] [--dry-run]   (the config's module set, as .mpy or ROMFS)
    kpnthings check-config config.json [--board B]   (deploy's full check alone: "ok" or the field)
    kpnthings ca HOST[:PORT] [--out ca.der] [--trust-store FILE]   (a server's root CA, as DER)
    kpnthings ca --check FILE [--check FILE ...] HOST[:PORT]   (do these DER files verify it?)
    kpnthings keygen [--out STEM]                     (update signing key: STEM.key, STEM_key.pub)
    kpnthings release build --board B --config C --version 1.2.0 [--out releases]
    kpnthings release sign FOLDER --key STEM.key [--public STEM_key.pub]
    kpnthings release verify FOLDER --public STEM_key.pub
    kpnthings update [DEVICE ...] [--offer VERSION | --withdraw]   (emulator: versions, offers)
    kpnthings --version

Only `new-device` ever prints a secret: creating one is what the user asked for.

The verbs live by family: cli_device (new-device, token, check-config), cli_send, cli_mock_server,
cli_ca, cli_release (keygen, release), emulator_client (downlink, messages) and deploy;
cli_base holds what they share.
"""

import argparse
import sys

from kpnthings import __version__

from . import cli_ca, cli_device, cli_mock_server, cli_release, cli_send, deploy, emulator_client
from .cli_base import CommandError, load_config, print_error  # noqa: F401 (re-exported)
from .cli_device import config_from_args  # noqa: F401 (re-exported)
from .cli_mock_server import parse_device  # noqa: F401 (re-exported)
from .cli_send import build_pack, parse_measurements, parse_value  # noqa: F401 (re-exported)

# -- entry point -----------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kpnthings", description="Host tools for KPN Things devices running MicroPython."
    )
    # The library's version is the firmware's: the one `[boot] kpnthings X` prints on a board.
    parser.add_argument("--version", action="version", version="kpnthings " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    cli_device.add_new_device(sub)
    cli_device.add_token(sub)
    cli_send.add_send(sub)
    cli_mock_server.add_mock_server(sub)
    emulator_client.add_parsers(sub)
    deploy.add_parser(sub)
    cli_device.add_check_config(sub)
    cli_ca.add_ca(sub)
    cli_release.add_parsers(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, emulator_client.ClientError) as e:
        print_error(str(e))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
