"""The full check of a device config, on the host: `kpnthings deploy` runs it before anything is
copied, `kpnthings new-device` runs it on what it writes, and `kpnthings check-config FILE` runs
it alone.

The board keeps a short check (kpnthings.config: every key the firmware reads has its type and
range, defaults merged), so that its code and heap stay small. This one is the check that used
to run on the board, every hook included: the core keys, the URL, the limits, the actuator spec
(actuators_check), the sensors (sensors_check), the mqtt_* keys (mqtt_check), unknown keys (the
board's own list), and the scrubbing of secrets from every message. It ends by running the
board's check on the same config and refuses a config the two would read differently, so what
deploy accepts is what boots.

A mistake raises kpnthings.config.ConfigError, whose message names the field and says what to
fix, and never contains the secret (or the Wi-Fi or MQTT password).
"""

from kpnthings import config as board_check
from kpnthings.config import DEFAULTS, REQUIRED, ConfigError, load_config, scrub, unknown_keys

from . import actuators_check, mqtt_check, sensors_check
from .config_board import _is_identifier, board_module, pin_rules, pin_warnings

# Whole-number settings beyond the core ones: (key, smallest, largest), the board's table.
_INT_LIMITS = tuple(
    (key,) + board_check.INTS[key]
    for key in sorted(board_check.INTS)
    if key not in ("interval_s", "cycles")
)
LOG_LEVELS = ("debug", "info", "warning", "error")
# Every blocking step must end before the RP2040 watchdog (about 8.3 s) fires.
MAX_TIMEOUT_S = 8
# A device's name (config "name"): a label for people, shown by the tools beside the DvnUUID.
MAX_NAME = 64
# The current root, the next one and a spare: each is parsed into mbedTLS's heap at every TLS
# connection (docs/tls.md).
MAX_CA_FILES = 3
# Earlier identities whose queued readings the board still sends under them (each one's outbox
# folder waits on the board's flash until it is sent).
MAX_PREVIOUS_IDENTITIES = 4
__all__ = (
    "ConfigError",
    "board_module",
    "check_file",
    "is_device_name",
    "load_config",
    "pin_rules",
    "pin_warnings",
    "unknown_keys",
    "validate",
)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


def _check_str(cfg, key, min_len=0, max_len=256):
    v = cfg[key]
    if not isinstance(v, str):
        raise ConfigError("%s: must be a string" % key)
    if not min_len <= len(v) <= max_len:
        raise ConfigError("%s: must be %d-%d characters, got %d" % (key, min_len, max_len, len(v)))


def _check_url(url):
    if not isinstance(url, str):
        raise ConfigError("url: must be a string like https://prod.dm.kpnthings.com")
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            host = url[len(scheme) :].split("/", 1)[0]
            if host and " " not in url:
                return url.rstrip("/")
    raise ConfigError("url: must start with https:// or http:// and name a host")


def _check_core(cfg, board, rules):
    from kpnthings import auth

    for key in REQUIRED:
        if key not in cfg:
            raise ConfigError("%s: missing (required)" % key)
    try:
        cfg["dvnuuid"] = auth.check_dvnuuid(cfg["dvnuuid"])
    except ValueError as e:
        raise ConfigError(str(e).replace("dvnuuid ", "dvnuuid: ", 1)) from None
    try:
        auth.check_secret(cfg["secret"])
    except ValueError as e:
        raise ConfigError(str(e).replace("secret ", "secret: ", 1)) from None
    cfg["url"] = _check_url(cfg["url"])

    name = cfg["board"]
    if not isinstance(name, str) or not name or not _is_identifier(name):
        raise ConfigError('board: must be a board name such as "esp32", "pico_w" or "unix"')
    has_wifi = getattr(board, "HAS_WIFI", name != "unix")
    _check_str(cfg, "wifi_ssid", 1 if has_wifi else 0, 32)
    _check_str(cfg, "wifi_password", 0, 64)
    pw = cfg["wifi_password"]
    if pw and len(pw) < 8:
        raise ConfigError(
            "wifi_password: WPA2 needs 8-64 characters (or empty for an open network)"
        )

    if not _is_int(cfg["interval_s"]) or not 1 <= cfg["interval_s"] <= 86400:
        raise ConfigError("interval_s: must be a whole number of seconds, 1-86400")
    cycles = cfg["cycles"]
    if cycles is not None and (not _is_int(cycles) or cycles < 1):
        raise ConfigError("cycles: must be a whole number >= 1, or null to run forever")
    t = cfg["timeout_s"]
    if not _is_number(t) or not 0 < t < MAX_TIMEOUT_S:
        raise ConfigError(
            "timeout_s: must be a number of seconds above 0 and below %d" % MAX_TIMEOUT_S
        )
    ca = cfg["ca_file"]
    if ca is not None and (not isinstance(ca, str) or not ca):
        raise ConfigError("ca_file: must be the path of a DER certificate file, or null")
    _check_ca_files(cfg.get("ca_files"), ca)
    _check_previous_identities(cfg)
    if not isinstance(cfg["tls_insecure"], bool):
        raise ConfigError("tls_insecure: must be true or false")
    if cfg["log_level"] not in LOG_LEVELS:
        raise ConfigError("log_level: must be one of " + ", ".join(LOG_LEVELS))
    if cfg["transport"] not in ("http", "mqtt"):
        raise ConfigError('transport: must be "http" or "mqtt"')
    _check_sleep(cfg, board)
    label = cfg.get("name")
    if label is not None and not is_device_name(label):
        raise ConfigError(
            "name: must be 1-%d characters of text, without control characters or spaces at"
            " either end (a label the tools show beside the DvnUUID), or left out" % MAX_NAME
        )

    if cfg["actuators"] is not None:
        pins = getattr(board, "OUTPUT_PINS", getattr(board, "PINS", None))
        avoid = rules.AVOID if rules is not None else None
        try:
            cfg["actuators"] = actuators_check.validate_spec(cfg["actuators"], pins, avoid)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def _check_sleep(cfg, board):
    """sleep and send_every_cycles (docs/configuration.md, "Sleep"), normalised as the board's
    check makes them: "sleep" stays set for "deep" only."""
    sleep = cfg.get("sleep")
    if sleep not in (None, "light", "deep"):
        raise ConfigError(
            'sleep: must be "light" (the default: the loop waits between cycles, Wi-Fi kept) or'
            ' "deep" (an ESP32 powers down between cycles and boots again: docs/boards/esp32.md)'
        )
    if sleep == "deep" and board is not None and not hasattr(board, "rtc_kept"):
        raise ConfigError(
            'sleep: must be "light" on this board: its deepsleep() is a light sleep and a reset,'
            " which loses the clock and RAM, and its light sleep returns at once while the"
            " Wi-Fi chip has an event pending (docs/boards/pico_w.md)"
        )
    if cfg.get("send_every_cycles") is not None and sleep != "deep":
        raise ConfigError(
            'send_every_cycles: only with "sleep": "deep" (the light loop sends every cycle, its'
            " Wi-Fi up anyway): remove the key or set sleep"
        )
    if sleep == "deep" and cfg.get("update"):
        raise ConfigError(
            'update: must be left out with "sleep": "deep": an update counts boots to roll back a'
            " version that never reaches KPN and polls its offer at boot, and with deep sleep"
            " every wake is a boot, most of them without Wi-Fi (docs/updates.md)"
        )
    cfg["sleep"] = "deep" if sleep == "deep" else None


def is_device_name(text):
    """A device name as `new-device --name` writes it and the dashboard shows it."""
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_NAME or text != text.strip():
        return False
    return all(c.isprintable() for c in text)


def _check_ca_files(paths, ca_file):
    if paths is None:
        return
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(
            'ca_files: must be a list of DER certificate files, such as ["ca-next.der"], trusted'
            " together with ca_file's; or null"
        )
    every = ([ca_file] if ca_file else []) + paths
    if len(set(every)) < len(every):
        raise ConfigError("ca_files: names a file twice (or the file ca_file names)")
    if len(every) > MAX_CA_FILES:
        raise ConfigError(
            "ca_files: at most %d CA files with ca_file: each one takes the board's memory while"
            " a TLS connection is made (docs/tls.md)" % MAX_CA_FILES
        )


def _check_previous_identities(cfg):
    """previous_identities: the identities this board had before (kpnthings new-device
    --previous), normalised as the board's check makes them."""
    from kpnthings import auth

    key = "previous_identities"
    olds = cfg.get(key)
    if olds is None:
        return
    if not isinstance(olds, list) or not olds or not all(isinstance(p, dict) for p in olds):
        raise ConfigError(
            '%s: must be a list of the identities this board had before, such as [{"dvnuuid":'
            ' "...", "secret": "..."}] (`kpnthings new-device --previous OLD.json` writes it), or'
            " left out" % key
        )
    if len(olds) > MAX_PREVIOUS_IDENTITIES:
        raise ConfigError(
            "%s: at most %d identities: drop the oldest, whose readings are sent by now"
            % (key, MAX_PREVIOUS_IDENTITIES)
        )
    if cfg["transport"] == "mqtt":
        raise ConfigError(
            "%s: only the http transport sends readings under an earlier identity; over MQTT"
            " they are moved aside and counted in droppedReadings (docs/resilience.md): remove"
            " the key" % key
        )
    out = []
    for i, old in enumerate(olds):
        where = "%s[%d]" % (key, i)
        extra = sorted(k for k in old if k not in ("dvnuuid", "secret"))
        if extra:
            raise ConfigError("%s: unknown field %r (only dvnuuid and secret)" % (where, extra[0]))
        for field in ("dvnuuid", "secret"):
            if field not in old:
                raise ConfigError("%s: %s missing" % (where, field))
        try:
            uuid = auth.check_dvnuuid(old["dvnuuid"])
            auth.check_secret(old["secret"])
        except ValueError as e:  # "secret must be ...": says what, never the value
            raise ConfigError("%s: %s" % (where, e)) from None
        if uuid == cfg["dvnuuid"]:
            raise ConfigError("%s: dvnuuid is this config's own dvnuuid" % where)
        if uuid in [p["dvnuuid"] for p in out]:
            raise ConfigError("%s: dvnuuid is named twice" % where)
        out.append({"dvnuuid": uuid, "secret": old["secret"]})
    cfg[key] = out


def _check_limits(cfg):
    for key, lo, hi in _INT_LIMITS:
        x = cfg.get(key)
        if x is None:
            continue
        if type(x) is not int or not lo <= x <= hi:
            raise ConfigError("%s: must be a whole number from %d to %d" % (key, lo, hi))
    base, cap = cfg.get("retry_base_s"), cfg.get("retry_cap_s")
    if base is not None and cap is not None and cap < base:
        raise ConfigError("retry_cap_s: must not be below retry_base_s")


def _validate_extensions(cfg, board, rules):
    """Keys owned by optional parts of the firmware, checked by their host checks.

    Each check gets the merged config (and the board's pin set and pin rules where pins
    matter) and raises ValueError naming its field; the result replaces the raw value.
    """
    _check_limits(cfg)
    if cfg.get("sensors") is not None:
        # Actuator pins and names are taken: a sensor on the LED pin, or a reading named like
        # an actuator whose state is echoed, would be a conflict the user must fix.
        acts = cfg["actuators"]
        if acts is None:
            acts = getattr(board, "ACTUATORS", None) or {}
        cfg["sensors"] = sensors_check.validate(
            cfg["sensors"],
            getattr(board, "PINS", None),
            getattr(board, "ADC_PINS", None),
            [acts[name]["pin"] for name in sorted(acts)],
            sorted(acts),
            rules,
        )
    if cfg["transport"] == "mqtt":
        mqtt_check.validate(cfg)
    if cfg.get("update") is not None:
        _check_update(cfg["update"])


def _check_update(want):
    """config "update" (docs/updates.md): {"url": the offer to poll at boot, "key": the public
    key file, "boots": K, the boots a new version has to reach KPN (default 3)}."""
    if not isinstance(want, dict):
        raise ConfigError('update: must be {"url": ..., "key": ..., "boots": K}, or null')
    extra = sorted(set(want) - {"url", "key", "boots"})
    if extra:
        raise ConfigError("update: unknown field %r (only url, key and boots)" % extra[0])
    try:
        _check_url(want.get("url"))
    except ConfigError as e:
        raise ConfigError("update." + str(e)) from None
    if not isinstance(want.get("key"), str) or not want["key"]:
        raise ConfigError("update.key: must be the path of the public key file (kpnthings keygen)")
    boots = want.get("boots", 3)
    if type(boots) is not int or not 1 <= boots <= 20:
        raise ConfigError("update.boots: must be a whole number from 1 to 20")


def validate(cfg, board=None):
    """Return a new config dict: defaults merged, every value checked, as the board reads it.

    board, when given, is the board module: its PINS/OUTPUT_PINS/ADC_PINS check the pins named
    by actuators and sensors, and its HAS_WIFI decides whether wifi_ssid is required. A board
    file loaded by board_module brings its pin rules (pin_rules), which both checks apply.
    """
    if not isinstance(cfg, dict):
        raise ConfigError("config: must be a JSON object")
    merged = dict(DEFAULTS)
    merged.update(cfg)
    rules = pin_rules(board)
    try:
        _check_core(merged, board, rules)
        _validate_extensions(merged, board, rules)
    except ValueError as e:
        raise ConfigError(scrub(str(e), merged)) from None
    # The board checks the same config at boot with its own short check: it must accept it
    # and read every value as this check does (defaults, sensor names, derived mqtt keys).
    on_board = board_check.validate(cfg, board, rules)
    for key in sorted(set(merged) | set(on_board)):
        if merged.get(key) != on_board.get(key):
            raise ConfigError(
                "%s: the board's own check reads this key differently from the host's (a bug in"
                " kpnthings: please report it)" % key
            )
    return merged


def check_file(path, board=None, root=None):
    """(config as the board reads it, unknown keys) of the config file at `path`.

    board: the board whose pin map the pins are checked against (default: the config's own
    "board"); a config for another board is refused. ConfigError names the field, never a
    secret.
    """
    raw = load_config(str(path))
    named = raw.get("board")
    if board is not None and named != board:
        said = named if isinstance(named, str) and _is_identifier(named) else "another board"
        raise ConfigError(scrub("board: the config is for %s, not %s" % (said, board), raw))
    checked = validate(raw, board_module(named if board is None else board, root))
    return checked, unknown_keys(raw)
