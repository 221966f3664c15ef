"""Provisioning: new device identities (DvnUUID v4 + secret from a CSPRNG) and their config.json.

The config file holds the device's secret, so it is written with owner-only permissions,
atomically (a half-written file never replaces a good one), and never over an existing file
unless asked. A board given a new identity can keep the old one's secret in
previous_identities (`kpnthings new-device --previous OLD.json`), so that the readings it queued
as the old device still go out under it.
"""

import json
import os
import secrets
import string
import tempfile
import uuid

from kpnthings import auth

DEFAULT_URL = "https://prod.dm.kpnthings.com"
DEFAULT_BOARD = "unix"
DEFAULT_INTERVAL_S = 60
DEFAULT_CA_FILE = "ca.der"
# 40 characters of 62 symbols: about 238 bits, well inside KPN's 30-100 character rule.
SECRET_LENGTH = 40
_ALPHABET = string.ascii_letters + string.digits


class Identity:
    """A device identity. Its repr never shows the secret."""

    __slots__ = ("dvnuuid", "name", "secret")

    def __init__(self, dvnuuid, secret, name=None):
        self.dvnuuid = auth.check_dvnuuid(dvnuuid)
        self.secret = auth.check_secret(secret)
        self.name = name

    def __repr__(self):
        return "Identity(dvnuuid=%r, name=%r, secret=<hidden>)" % (self.dvnuuid, self.name)


def new_secret(length=SECRET_LENGTH):
    """A fresh secret from `secrets` meeting ^[0-9a-zA-Z]{30,100}$."""
    return auth.check_secret("".join(secrets.choice(_ALPHABET) for _ in range(length)))


def new_dvnuuid():
    """A fresh version 4 UUID, lowercase, as KPN advises."""
    return str(uuid.uuid4())


def new_identity(name=None):
    return Identity(new_dvnuuid(), new_secret(), name)


def build_config(
    identity,
    url=DEFAULT_URL,
    board=DEFAULT_BOARD,
    wifi_ssid="",
    wifi_password="",
    interval_s=DEFAULT_INTERVAL_S,
    ca_file=None,
    tls_insecure=False,
    cycles=None,
    previous_identities=None,
):
    """The config.json dict the firmware reads.

    For an https URL the device verifies the server against ``ca_file`` (default ``ca.der``,
    the DER bundle the deploy tooling puts on the board) unless ``tls_insecure`` opts out.
    The identity's name, if it has one, goes in as ``name``: the board carries it unread, the
    emulator and its dashboard show it (``mock-server --device-config``).
    """
    config = {
        "dvnuuid": identity.dvnuuid,
        "secret": identity.secret,
        "url": url,
        "board": board,
        "wifi_ssid": wifi_ssid,
        "wifi_password": wifi_password,
        "interval_s": int(interval_s),
    }
    if identity.name:
        config["name"] = identity.name
    if url.lower().startswith("https:"):
        if tls_insecure:
            config["tls_insecure"] = True
        else:
            config["ca_file"] = ca_file or DEFAULT_CA_FILE
    if cycles is not None:
        config["cycles"] = int(cycles)
    if previous_identities:
        config["previous_identities"] = list(previous_identities)
    return config


def previous_identities(old_config, new_dvnuuid, limit):
    """previous_identities for a new identity replacing the one in `old_config` (a dict from
    load_config): that identity first, then the earlier ones it still held, at most `limit`,
    the new identity never among them. The board sends each one's queued readings under it.
    ValueError names a bad entry, never its secret."""
    out = [{"dvnuuid": old_config["dvnuuid"], "secret": old_config["secret"]}]
    olds = old_config.get("previous_identities") or []
    if not isinstance(olds, list):
        raise ValueError("previous_identities: must be a list")
    for i, entry in enumerate(olds):
        try:
            if not isinstance(entry, dict):
                raise ValueError("must be an object with dvnuuid and secret")
            uuid = auth.check_dvnuuid(entry.get("dvnuuid"))
            secret = auth.check_secret(entry.get("secret"))
        except ValueError as e:
            raise ValueError("previous_identities[%d]: %s" % (i, e)) from None
        if uuid not in [p["dvnuuid"] for p in out]:
            out.append({"dvnuuid": uuid, "secret": secret})
    return [p for p in out if p["dvnuuid"] != new_dvnuuid][:limit]


def write_config(path, config, force=False):
    """Write config as JSON, mode 0600, atomically; refuse to replace a file unless force."""
    path = os.fspath(path)
    if os.path.exists(path) and not force:
        raise FileExistsError("%s exists; pass --force to replace it" % path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_config(path):
    """Read a config.json and check its identity fields. Every error names the file and never
    shows the secret."""
    with open(path) as f:
        try:
            config = json.load(f)
        except ValueError as e:  # JSON's says where (line, column), never the text; or not UTF-8
            raise ValueError("%s: not valid JSON: %s" % (path, e)) from None
    if not isinstance(config, dict):
        raise ValueError("%s: config must be a JSON object" % path)
    for key in ("dvnuuid", "secret"):
        if key not in config:
            raise ValueError("%s: missing %s" % (path, key))
    try:
        config["dvnuuid"] = auth.check_dvnuuid(config["dvnuuid"])
        auth.check_secret(config["secret"])
    except ValueError as e:
        raise ValueError("%s: %s" % (path, e)) from None
    return config
