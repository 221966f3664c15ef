"""`kpnthings send`: one pack from the host, its token, and KPN's (or the emulator's) answer."""

import json
import os
import re
import ssl
import time

from kpnthings import auth

from . import provision
from .cli_base import CommandError, load_config, print_error

_PEM = "-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----"


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


def add_send(sub):
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

    config = load_config(args.config)
    measurements = parse_measurements(args.measurements)
    if not measurements:
        raise CommandError("give at least one name=value to send")
    url = args.url or config.get("url") or provision.DEFAULT_URL
    insecure = bool(config.get("tls_insecure"))
    if insecure and url.lower().startswith("https:"):
        print_error("warning: tls_insecure is set, the server certificate is NOT verified")
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
