"""`kpnthings new-device`, `token` and `check-config`: a device's identity, the token of a body,
and deploy's config check alone."""

import json
import sys

from kpnthings import auth

from . import config_check, fleet, provision
from .cli_base import CommandError, load_config, print_error


def add_new_device(sub):
    p = sub.add_parser("new-device", help="print a fresh DvnUUID and secret (and a config.json)")
    p.add_argument(
        "--name",
        help="a label for the device, kept in its config as name (fleet mode: the prefix of"
        " prefix-01, prefix-02, ... and of their file names)",
    )
    p.add_argument("--url", default=provision.DEFAULT_URL, help="KPN Things base URL")
    p.add_argument("--board", default=provision.DEFAULT_BOARD, help="esp32, pico_w or unix")
    p.add_argument("--wifi-ssid", default="")
    p.add_argument("--wifi-password", default="")
    p.add_argument(
        "--interval",
        type=int,
        default=provision.DEFAULT_INTERVAL_S,
        dest="interval_s",
        help="seconds between uplinks",
    )
    p.add_argument("--cycles", type=int, help="stop the firmware loop after N cycles (host runs)")
    p.add_argument("--ca-file", help="CA bundle (DER) on the board, for https URLs")
    p.add_argument(
        "--tls-insecure",
        action="store_true",
        help="do not verify the server certificate (warned at every boot)",
    )
    p.add_argument("--config-out", help="write the identity as a config.json here")
    p.add_argument("--force", action="store_true", help="replace an existing --config-out file")
    p.add_argument(
        "--previous",
        metavar="OLD.json",
        help="the config the board ran before: its identity (and the earlier ones it kept) go"
        " into previous_identities, so the readings the board queued as that device still go"
        " out under it (read before --config-out is written: it may be the same file)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of lines")
    fleet.add_arguments(p)
    p.set_defaults(run=_cmd_new_device)
    return p


def config_from_args(identity, args):
    """The config dict for one identity from new-device's options (reused by fleet mode).

    Checked by deploy's full check (which ends with the board's own), so a config the board
    would refuse at boot (say esp32 without --wifi-ssid) is refused here, before anything is
    written.
    """
    config = provision.build_config(
        identity,
        url=args.url,
        board=args.board,
        wifi_ssid=args.wifi_ssid,
        wifi_password=args.wifi_password,
        interval_s=args.interval_s,
        ca_file=args.ca_file,
        tls_insecure=args.tls_insecure,
        cycles=args.cycles,
        previous_identities=_previous(args, identity),
    )
    try:
        config_check.validate(config, config_check.board_module(config.get("board")))
    except ValueError as e:
        raise CommandError("config would not boot: %s" % e) from None
    return config


def _previous(args, identity):
    """previous_identities from --previous OLD.json, or None."""
    path = getattr(args, "previous", None)
    if not path:
        return None
    try:
        old = provision.load_config(path)  # its errors name the file, never the secret
    except OSError as e:
        raise CommandError("--previous: cannot read %s: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise CommandError("--previous: %s" % e) from None
    try:
        return provision.previous_identities(
            old, identity.dvnuuid, config_check.MAX_PREVIOUS_IDENTITIES
        )
    except ValueError as e:
        raise CommandError("--previous: %s: %s" % (path, e)) from None


def _cmd_new_device(args):
    if args.count is not None or args.out is not None:
        if args.count is None:
            raise CommandError("--out is for fleet mode: add --count N")
        if args.previous:
            raise CommandError("--previous gives one board a new identity: not with --count")
        try:
            return fleet.run(args, lambda identity: config_from_args(identity, args))
        except fleet.FleetError as e:
            raise CommandError(str(e)) from None
    identity = provision.new_identity(args.name)
    config = config_from_args(identity, args)
    if args.config_out:
        try:
            provision.write_config(args.config_out, config, args.force)
        except FileExistsError as e:
            raise CommandError(str(e)) from None
        except OSError as e:
            raise CommandError("cannot write %s: %s" % (args.config_out, e.strerror)) from None
    if args.json:
        out = {"dvnuuid": identity.dvnuuid, "secret": identity.secret}
        if identity.name:
            out["name"] = identity.name
        print(json.dumps(out, sort_keys=True))
    else:
        if identity.name:
            print("name:    %s" % identity.name)
        print("dvnuuid: %s" % identity.dvnuuid)
        print("secret:  %s" % identity.secret)
        if args.config_out:
            print("config:  %s" % args.config_out)
    return 0


# -- token -----------------------------------------------------------------------------------


def add_token(sub):
    p = sub.add_parser("token", help="print the Things-Message-Token for a body (FILE or -)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--secret", help="the device secret")
    src.add_argument("--config", help="take the secret from this config.json")
    p.add_argument("file", help="body file, or - for stdin; hashed byte for byte")
    p.set_defaults(run=_cmd_token)
    return p


def _cmd_token(args):
    if args.config:
        secret = load_config(args.config)["secret"]
    else:
        secret = args.secret
        try:
            auth.check_secret(secret)
        except ValueError as e:
            # Still useful for checking KPN's short test vectors, so only warn.
            print_error("warning: %s (KPN would refuse it)" % e)
    if args.file == "-":
        body = sys.stdin.buffer.read()
    else:
        try:
            with open(args.file, "rb") as f:
                body = f.read()
        except OSError as e:
            raise CommandError("cannot read %s: %s" % (args.file, e.strerror)) from None
    print(auth.message_token(body, secret))
    return 0


def add_check_config(sub):
    p = sub.add_parser(
        "check-config",
        help="check a config.json as deploy does: prints ok, or the field that is wrong",
    )
    p.add_argument("config", help="the device's config.json")
    p.add_argument("--board", help="check its pins against this board (default: its own board)")
    p.set_defaults(run=_cmd_check_config)


def _cmd_check_config(args):
    """Exit 0 and print "ok", or exit 1 with one line naming the field (never its value)."""
    try:
        checked, unknown = config_check.check_file(args.config, args.board)
    except config_check.ConfigError as e:
        text = str(e)
        print_error(text if text.startswith("config:") else "config %s: %s" % (args.config, text))
        return 1
    board = config_check.board_module(checked["board"])
    for line in config_check.pin_warnings(checked, board):
        print_error("warning: config %s: %s" % (args.config, line))
    if unknown:
        print_error(
            "warning: config %s has keys the firmware does not know (typos?): %s"
            % (args.config, ", ".join(unknown))
        )
    print("ok")
    return 0
