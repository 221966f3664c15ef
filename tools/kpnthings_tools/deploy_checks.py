"""What `kpnthings deploy` checks before anything is compiled or copied: the config (the full
check of kpnthings_tools.config_check), the board it names, the CA files it points at, the port
and the firmware. Each failure is a DeployError that says what to fix."""

import json
import os
import re
import sys
from pathlib import Path

from . import config_check

BOARD_CA_PATH = "ca.der"
# What a ca_files entry may be: a file beside config.json on the board, as beside the config here.
_CA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.der$")


class DeployError(Exception):
    """Something the user must fix before a deploy can run; the message says what."""


def load_config(path, board=None, root=None):
    """Read a device config and run the full check on it (kpnthings_tools.config_check), before
    anything is compiled or copied.

    Returns the config as the board will read it (defaults filled in). Errors name the file and
    the field, never the secret. `board` (a board name) checks the pins against that board's pin
    map; the board named in the config must be that board (check_board says so plainly).
    """
    path = Path(path)
    if not path.is_file():
        raise DeployError(
            "config %s not found (create one with `kpnthings new-device "
            "--board BOARD --config-out %s`)" % (path, path)
        )
    module = config_check.board_module(board, root)
    try:
        raw = config_check.load_config(str(path))
        merged = config_check.validate(raw, module)
    except config_check.ConfigError as e:
        raise DeployError("config %s: %s" % (path, e)) from None
    for line in config_check.pin_warnings(merged, module):
        sys.stderr.write("kpnthings deploy: warning: config %s: %s\n" % (path, line))
    unknown = config_check.unknown_keys(raw)
    if unknown:
        sys.stderr.write(
            "kpnthings deploy: warning: config %s has keys the firmware does not "
            "know (typos?): %s\n" % (path, ", ".join(unknown))
        )
    return merged


def check_board(board, config, config_path):
    wanted = config.get("board")
    if wanted != board:
        raise DeployError(
            'config %s says "board": %s but --board is %s: deploy the matching board, or set '
            '"board": "%s" in the config' % (config_path, json.dumps(wanted), board, board)
        )


def needs_ca(config):
    """Whether the board verifies a server with the CA in ca_file (ca.der)."""
    if config.get("tls_insecure"):
        return False
    if config.get("transport") == "mqtt":
        # MQTT's own CA (mqtt_ca_file) wins; without it the broker is checked against ca_file.
        return config.get("mqtt_tls", True) is not False and not config.get("mqtt_ca_file")
    return str(config.get("url", "")).lower().startswith("https:")


def resolve_ca(config, config_path, ca):
    """The local CA file to copy, or None. Checks it is DER, and that the config points at it."""
    config_path = Path(config_path)
    if ca is None and config.get("ca_file"):
        # Convenience: a ca_file that sits beside the config is the one to send.
        beside = config_path.parent / str(config["ca_file"])
        if beside.is_file():
            ca = beside
    if ca is None:
        more = config.get("ca_files")
        if (needs_ca(config) and not more) or (more and config.get("ca_file")):
            raise DeployError(
                "config %s uses https and verifies the server, but no CA was given: pass "
                '--ca kpn-ca.der (DER), or set "tls_insecure": true to opt out of '
                "certificate checks" % config_path
            )
        return None
    ca = check_der_file(ca, "CA file")
    wanted = str(config.get("ca_file", "")).lstrip("/")
    if needs_ca(config) and wanted != BOARD_CA_PATH:
        raise DeployError(
            'config %s: ca_file is %s but deploy puts the CA at %s; set "ca_file": "%s"'
            % (config_path, json.dumps(config.get("ca_file")), BOARD_CA_PATH, BOARD_CA_PATH)
        )
    return ca


def check_der_file(path, what):
    """`path` as a Path, after checking it holds DER certificates (one or more, back to back,
    as the board reads them), else DeployError saying how to fix it."""
    from . import ca as ca_tools

    path = Path(path)
    if not path.is_file():
        raise DeployError("%s %s not found" % (what, path))
    data = path.read_bytes()
    if b"-----BEGIN" in data[:64]:
        raise DeployError(
            "%s %s is PEM; the board needs DER (the unix port rejects PEM CA data). "
            "Convert it: openssl x509 -in %s -outform DER -out %s"
            % (what, path, path, path.with_suffix(".der"))
        )
    if not data.startswith(b"\x30"):
        raise DeployError("%s %s is not a DER certificate (it must start with 0x30)" % (what, path))
    try:
        ca_tools.read_der_file(path)
    except ca_tools.CAError as e:
        raise DeployError("%s %s" % (what, e)) from None
    return path


def resolve_ca_files(config, config_path, ca_path):
    """[(local file, name on the board)] for config["ca_files"], and for mqtt_ca_file (the
    broker's own CA) where MQTT over TLS uses it: each a DER file beside the config, copied
    beside config.json on the board under the same name."""
    config_path = Path(config_path)
    fields = [("ca_files", name) for name in config.get("ca_files") or ()]
    mqtt_ca = config.get("mqtt_ca_file")
    if mqtt_ca and config.get("transport") == "mqtt" and config.get("mqtt_tls", True) is not False:
        fields.append(("mqtt_ca_file", mqtt_ca))
    out = []
    for field, name in fields:
        if not isinstance(name, str) or not _CA_NAME.match(name):
            raise DeployError(
                "config %s: %s: %s: deploy copies each CA beside config.json, so give a file"
                ' name ending in .der, without folders, such as "ca-next.der"'
                % (config_path, field, json.dumps(name))
            )
        if name == BOARD_CA_PATH and ca_path is not None:
            raise DeployError(
                "config %s: %s: %s is where ca_file's CA goes; give this one another name"
                % (config_path, field, name)
            )
        if name not in [n for _, n in out]:
            out.append((check_der_file(config_path.parent / name, field + ": CA file"), name))
    return out


def check_port(port, tool, must_exist=True):
    if not port:
        raise DeployError(
            "--port is required (e.g. /dev/ttyUSB0, COM3, or socket://host:port); "
            "list serial ports with `mpremote connect list`"
        )
    if tool == "ampy" and "://" in port:
        raise DeployError(
            "ampy cannot open %s: it speaks to serial ports only; use --tool mpremote" % port
        )
    if must_exist and port.startswith("/dev/") and not os.path.exists(port):
        raise DeployError(
            "port %s does not exist: is the board plugged in? list serial ports "
            "with `mpremote connect list`" % port
        )


def check_firmware(root):
    missing = [n for n in ("boot.py", "main.py") if not (root / "firmware" / n).is_file()]
    if missing:
        raise DeployError("firmware/%s missing in %s" % (" and firmware/".join(missing), root))
