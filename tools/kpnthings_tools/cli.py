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
    kpnthings --version

Only `new-device` ever prints a secret: creating one is what the user asked for.
"""

import argparse
import ipaddress
import json
import os
import re
import signal
import ssl
import sys
import threading
import time

from kpnthings import __version__, auth

from . import config_check, deploy, emulator_client, fleet, provision

_PEM = "-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----"


class CommandError(Exception):
    """A user error: printed as one line on stderr, exit status 2."""


def _err(text):
    sys.stderr.write("kpnthings: %s\n" % text)
    sys.stderr.flush()


# -- new-device ------------------------------------------------------------------------------


def _add_new_device(sub):
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


def _add_token(sub):
    p = sub.add_parser("token", help="print the Things-Message-Token for a body (FILE or -)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--secret", help="the device secret")
    src.add_argument("--config", help="take the secret from this config.json")
    p.add_argument("file", help="body file, or - for stdin; hashed byte for byte")
    p.set_defaults(run=_cmd_token)
    return p


def _cmd_token(args):
    if args.config:
        secret = _load_config(args.config)["secret"]
    else:
        secret = args.secret
        try:
            auth.check_secret(secret)
        except ValueError as e:
            # Still useful for checking KPN's short test vectors, so only warn.
            _err("warning: %s (KPN would refuse it)" % e)
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


# -- send ------------------------------------------------------------------------------------


def parse_value(text):
    """A command-line value: int, float, true/false, else a string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text, 10)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    # nan/inf are not JSON numbers: keep them as text.
    if value != value or value in (float("inf"), float("-inf")):
        return text
    return value


def parse_measurements(items):
    """["temperature=21.5", ...] -> [(name, value), ...] in the given order."""
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError("measurement %r must look like name=value" % item)
        out.append((name, parse_value(value)))
    return out


def build_pack(dvnuuid, measurements, now=None):
    """SenML bytes for the measurements, with the base name and (host clock) base time."""
    from kpnthings import senml

    if now is None:
        now = int(time.time())
    pack = senml.Pack(base_name=auth.base_name(dvnuuid), base_time=int(now))
    for name, value in measurements:
        pack.add(name, value)
    try:
        return pack.encode()
    except senml.SenMLError as e:
        raise CommandError("cannot build the pack: %s" % e) from None


def _load_config(path):
    try:
        return provision.load_config(path)
    except OSError as e:
        raise CommandError("cannot read %s: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise CommandError(str(e)) from None


def _ca_data(config, config_path):
    """DER bytes of the config's CA files, ca_file and then each of ca_files, back to back (PEM
    is converted, for convenience on the host); None without any."""
    names = ([config["ca_file"]] if config.get("ca_file") else []) + list(
        config.get("ca_files") or ()
    )
    out = []
    for ca_file in names:
        path = ca_file
        if not os.path.isabs(path):
            path = os.path.join(os.path.dirname(os.path.abspath(config_path)), path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise CommandError("CA file %s: %s" % (ca_file, e.strerror)) from None
        if b"-----BEGIN CERTIFICATE-----" in data:
            pems = re.findall(_PEM, data.decode("ascii", "replace"), re.DOTALL)
            data = b"".join(ssl.PEM_cert_to_DER_cert(pem) for pem in pems)
        out.append(data)
    return b"".join(out) or None


def _add_send(sub):
    p = sub.add_parser("send", help="send one pack from the host and print the answer")
    p.add_argument("--config", required=True, help="the device's config.json")
    p.add_argument("--url", help="override the config's url")
    p.add_argument("--timeout", type=float, default=7.0, help="deadline in seconds")
    p.add_argument(
        "measurements",
        nargs="*",
        metavar="name=value",
        help="values: int, float, true/false, else a string",
    )
    p.set_defaults(run=_cmd_send)
    return p


def _cmd_send(args):
    from kpnthings.client import Client

    config = _load_config(args.config)
    measurements = parse_measurements(args.measurements)
    if not measurements:
        raise CommandError("give at least one name=value to send")
    url = args.url or config.get("url") or provision.DEFAULT_URL
    insecure = bool(config.get("tls_insecure"))
    if insecure and url.lower().startswith("https:"):
        _err("warning: tls_insecure is set, the server certificate is NOT verified")
    cadata = _ca_data(config, args.config)
    try:
        client = Client(
            config["dvnuuid"],
            config["secret"],
            url=url,
            timeout=args.timeout,
            cadata=cadata,
            insecure=insecure,
        )
    except ValueError as e:
        # e.g. https without ca_file: the client's message says what to set.
        raise CommandError(str(e)) from None
    body = build_pack(config["dvnuuid"], measurements)
    try:
        result = client.send(body)
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()
    print("status:   %s" % result.status)
    print("outcome:  %s" % result.outcome)
    if getattr(result, "error", None):
        print("error:    %s" % result.error)
    print("downlink: %s" % json.dumps(_plain(result.downlink), sort_keys=True))
    return 0 if 200 <= (result.status or 0) < 300 else 1


def _plain(records):
    """Resolved records as JSON-ready dicts; bytes (vd) in base64url, as SenML and the
    emulator's listings write them."""
    from .emulator import jsonable_records

    return jsonable_records(records)


# -- mock-server -----------------------------------------------------------------------------


def _add_mock_server(sub):
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
        config = _load_config(path)
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
    emu = emulator.Emulator(args.db, devices, max_body=max_body, log=log, refuse=args.refuse)
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
        _err(
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


# -- check-config ----------------------------------------------------------------------------


def _add_check_config(sub):
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
        _err(text if text.startswith("config:") else "config %s: %s" % (args.config, text))
        return 1
    board = config_check.board_module(checked["board"])
    for line in config_check.pin_warnings(checked, board):
        _err("warning: config %s: %s" % (args.config, line))
    if unknown:
        _err(
            "warning: config %s has keys the firmware does not know (typos?): %s"
            % (args.config, ", ".join(unknown))
        )
    print("ok")
    return 0


# -- ca --------------------------------------------------------------------------------------


def _add_ca(sub):
    from .ca import DEFAULT_TIMEOUT_S

    p = sub.add_parser(
        "ca",
        help="fetch a server's root CA as DER for the board, or check DER files against it",
        description="Fetch the root CA that anchors HOST's certificate chain, from the trust "
        "store, and write it as DER; or, with --check, verify HOST against DER files only, "
        "as the board does with ca_file and ca_files.",
    )
    p.add_argument("host", metavar="HOST[:PORT]", help="the server (port 443 unless given)")
    p.add_argument(
        "--check",
        action="append",
        metavar="FILE",
        help="verify HOST against this DER file (repeat: loaded together, as ca_files)",
    )
    p.add_argument("--out", default="ca.der", help="where the root goes (default ca.der)")
    p.add_argument("--force", action="store_true", help="replace a different --out file")
    p.add_argument(
        "--trust-store",
        metavar="FILE",
        help="trust only these certificates (PEM or DER) instead of the system's store",
    )
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    p.set_defaults(run=_cmd_ca)


def _cmd_ca(args):
    from . import ca

    try:
        host, port = ca.parse_target(args.host)
        if args.check:
            if args.trust_store or args.out != "ca.der" or args.force:
                raise CommandError("--check takes no --out, --force or --trust-store")
            return _ca_check(ca, args.check, host, port, args.timeout)
        root = ca.fetch_root(host, port, args.trust_store, args.timeout)
        changed = ca.save_der(args.out, root.der, args.force)
    except ca.CAError as e:
        raise CommandError(str(e)) from None
    store = args.trust_store or "the system's trust store"
    print("host:     %s:%d (sent %d certificates)" % (host, port, root.sent))
    print("root:     %s" % ca.name_text(root.info["subject"]))
    print("expires:  %s" % ca.expiry_text(root.info))
    print("sha256:   %s" % ca.fingerprint(root.der))
    if root.trusted:
        print("trusted:  yes: it is in %s and anchors the verified chain" % store)
    else:
        print("trusted:  NO: the server sent this self-signed root, and %s lacks it" % store)
        _err(
            "warning: %s is NOT verified: compare its sha256 above with the one the server's "
            "operator publishes before a board trusts it" % args.out
        )
    said = "wrote:   " if changed else "same:    "
    print("%s %s (DER, %d bytes)" % (said, args.out, len(root.der)))
    name = os.path.basename(args.out)
    print(
        'config:   %s beside config.json as "ca_file": "%s", or in "ca_files" next to the'
        " current root before a change of root (docs/tls.md)" % (name, name)
    )
    return 0


def _ca_check(ca, files, host, port, timeout):
    result = ca.check(files, host, port, timeout)
    for info in result.cas.values():
        print("trusts:   %s, expires %s" % (ca.name_text(info["subject"]), ca.expiry_text(info)))
    if result.ok:
        info = result.cas.get(result.anchor)
        name = ca.name_text(info["subject"]) if info else "a certificate"
        print("ok:       %s:%d verifies against %s from %s" % (host, port, name, result.file_of))
        return 0
    print(
        "FAILED:   %s:%d does not verify against %s: %s"
        % (host, port, ", ".join(str(f) for f in files), result.error)
    )
    if result.chain_end is not None:
        print(
            "server:   its chain ends at a certificate issued by %s"
            % ca.name_text(result.chain_end["issuer"])
        )
    return 1


# -- entry point -----------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kpnthings", description="Host tools for KPN Things devices running MicroPython."
    )
    # The library's version is the firmware's: the one `[boot] kpnthings X` prints on a board.
    parser.add_argument("--version", action="version", version="kpnthings " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_new_device(sub)
    _add_token(sub)
    _add_send(sub)
    _add_mock_server(sub)
    emulator_client.add_parsers(sub)
    deploy.add_parser(sub)
    _add_check_config(sub)
    _add_ca(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, emulator_client.ClientError) as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
