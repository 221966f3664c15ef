"""`kpnthings mock-server`: the local KPN Things emulator on a port, its devices and API token."""

import ipaddress
import os
import re
import signal
import sys
import threading

from kpnthings import auth

from . import config_check
from .cli_base import CommandError, load_config, print_error


def add_mock_server(sub):
    p = sub.add_parser("mock-server", help="run the local KPN Things emulator")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="UUID:SECRET[:NAME]",
        help="register a device, with its name if given (repeatable)",
    )
    p.add_argument(
        "--device-config",
        action="append",
        default=[],
        metavar="PATH",
        help="register the device in this config.json, with its name (keeps the secret off ps)",
    )
    p.add_argument(
        "--db",
        default="kpnthings-emulator.sqlite3",
        help="SQLite file for received messages (default ./kpnthings-emulator.sqlite3)",
    )
    p.add_argument("--max-body", type=int, default=None, help="request body limit in bytes")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument(
        "--api-token",
        default=os.environ.get("KPNTHINGS_API_TOKEN") or None,
        metavar="TOKEN",
        help="require this token (Authorization: Bearer TOKEN) for the API and the dashboard's"
        " data; default $KPNTHINGS_API_TOKEN, and a fresh one, printed, when --host is not a"
        " loopback address. Devices never need it",
    )
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    p.add_argument(
        "--refuse",
        action="append",
        default=[],
        metavar="NAME",
        help="answer 400 to every pack holding a record of this name, as KPN refuses a pack"
        " for one record it will not store (repeatable; to test a device's splitting)",
    )
    p.add_argument(
        "--releases",
        metavar="DIR",
        help="serve the signed releases in DIR (kpnthings release build/sign) and the update"
        " offers devices poll at boot (docs/updates.md)",
    )
    p.set_defaults(run=_cmd_mock_server)
    return p


def parse_device(spec, index):
    """'UUID:SECRET' or 'UUID:SECRET:NAME' -> (uuid, secret, name or None); errors name the
    option, never the secret. A secret is letters and digits only, so the first colon after
    it starts the name."""
    dvnuuid, sep, rest = spec.partition(":")
    if not sep:
        raise CommandError("--device #%d must look like UUID:SECRET or UUID:SECRET:NAME" % index)
    secret, sep, name = rest.partition(":")
    try:
        dvnuuid = auth.check_dvnuuid(dvnuuid)
        auth.check_secret(secret)
    except ValueError as e:
        raise CommandError("--device #%d: %s" % (index, e)) from None
    if sep and not config_check.is_device_name(name):
        raise CommandError(
            "--device #%d: the name must be 1-%d characters of text, without control"
            " characters" % (index, config_check.MAX_NAME)
        )
    return dvnuuid, secret, name or None


def _cmd_mock_server(args):
    from . import emulator

    devices = []
    for i, spec in enumerate(args.device, 1):
        devices.append(parse_device(spec, i))
    for path in args.device_config:
        config = load_config(path)
        name = config.get("name")
        if name is not None and not config_check.is_device_name(name):
            raise CommandError("%s: name: must be a one-line label (kpnthings check-config)" % path)
        devices.append((config["dvnuuid"], config["secret"], name))
    if args.tls_key and not args.tls_cert:
        raise CommandError("--tls-key needs --tls-cert")

    def log(line):
        if not args.quiet:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    max_body = args.max_body if args.max_body is not None else emulator.DEFAULT_MAX_BODY
    local = emulator.is_loopback(args.host)
    token = args.api_token
    if token is not None and not re.match(r"^[!-~]{8,}$", token):
        raise CommandError("--api-token must be 8 or more printable characters, no spaces")
    if token is None and not local:
        token = emulator.new_api_token()
    emu = emulator.Emulator(
        args.db, devices, max_body=max_body, log=log, refuse=args.refuse, releases=args.releases
    )
    try:
        server = emu.serve(
            args.host, args.port, tls_cert=args.tls_cert, tls_key=args.tls_key, api_token=token
        )
    except OSError as e:
        emu.close()
        raise CommandError("cannot listen on %s:%d: %s" % (args.host, args.port, e)) from None
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    # The first line names the URL: scripts and tests read it to find a port-0 server.
    print("KPN Things emulator listening on %s" % server.url, flush=True)
    base = server.url.rstrip("/")
    if not local:
        where = _lan_address() if _every_address(args.host) else args.host
        if where:
            scheme = base.split("://", 1)[0]
            base = "%s://%s:%d" % (scheme, "[%s]" % where if ":" in where else where, server.port)
            print("board url: %s   (the url for a board's config.json)" % base, flush=True)
        else:
            print(
                "board url: %s://<this computer's LAN address>:%d   (`ip -4 addr` or `ipconfig`"
                " shows it)" % (base.split("://", 1)[0], server.port),
                flush=True,
            )
        print_error(
            "warning: the emulator listens beyond this machine (--host %s): anyone on your"
            " network can reach it. Its API and dashboard need the token below; devices need"
            " their own Things-Message-Token. %s Use a network you trust, and stop the emulator"
            " when the bench test is done."
            % (
                args.host,
                "Everything, the token too, travels unencrypted (plain HTTP)."
                if server.url.startswith("http:")
                else "Traffic is encrypted (--tls-cert).",
            )
        )
    if token is None:
        print("dashboard: %s/" % base, flush=True)
    else:
        print("dashboard: %s/#token=%s" % (base, token), flush=True)
        print(
            "api token: %s   (send Authorization: Bearer <token> to /api/...)" % token, flush=True
        )
    for dvnuuid in emu.device_ids():
        name = emu.device_name(dvnuuid)
        print("device %s registered%s" % (dvnuuid, " (%s)" % name if name else ""), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        print("KPN Things emulator stopped", flush=True)
    return 0


def _lan_address():
    """This machine's address on the network its default route leads to, or None. Connecting
    a UDP socket sends nothing: it only makes the kernel choose the route and the source."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737): never answered, never sent to
        address = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if address.startswith("127.") or _every_address(address) else address


def _every_address(host):
    """Whether binding `host` listens on every interface (0.0.0.0, ::)."""
    try:
        return not host or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
