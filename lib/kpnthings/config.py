"""Load and validate the device's config.json, once, at boot.

validate() merges the defaults in and checks every key; a mistake raises ConfigError whose
message names the field and says what to fix, and never contains the secret (or the Wi-Fi
password). Keys owned by optional modules are checked by those modules, through the hooks in
_validate_extensions(): a module that is not installed costs nothing.
"""

try:
    from typing import Any  # noqa: F401
except ImportError:
    pass

DEFAULTS = {
    "url": "https://prod.dm.kpnthings.com",
    "wifi_ssid": "",
    "wifi_password": "",
    "interval_s": 60,
    "cycles": None,
    "timeout_s": 5,
    "ca_file": None,
    "tls_insecure": False,
    "actuators": None,
    "log_level": "info",
    "transport": "http",
}
REQUIRED = ("dvnuuid", "secret", "board")
# Keys this module knows. Other modules add theirs (sensors, mqtt_*, outbox_*, ...) to
# EXTENSION_KEYS so unknown_keys() can point at typos without refusing their keys.
CORE_KEYS = set(DEFAULTS) | set(REQUIRED)
EXTENSION_KEYS = set(
    (
        "sensors",
        "outbox_dir",
        "outbox_max_bytes",
        "dead_max_bytes",
        "max_body",
        "wdt_ms",
        "retry_base_s",
        "retry_cap_s",
        "auth_retry_s",
    )
)
# Optional whole-number settings: (key, smallest, largest). The outbox needs room for at least
# one segment; a body below 256 bytes cannot hold a base name and a reading.
_INT_LIMITS = (
    ("outbox_max_bytes", 2048, 1 << 24),
    ("dead_max_bytes", 512, 1 << 24),
    ("max_body", 256, 16384),
    ("retry_base_s", 1, 86400),
    ("retry_cap_s", 1, 86400),
    ("auth_retry_s", 10, 86400),
)
# Whole families of keys owned by one module (mqtt_config.py checks every mqtt_* key).
EXTENSION_PREFIXES = ("mqtt_",)
LOG_LEVELS = ("debug", "info", "warning", "error")
# Every blocking step must end before the RP2040 watchdog (about 8.3 s) fires.
MAX_TIMEOUT_S = 8
_SECRET_KEYS = ("secret", "wifi_password", "mqtt_password")


class ConfigError(ValueError):
    """config.json is unusable; the message names the field and never holds a secret."""


def load_config(path):
    """Read and parse a JSON config file; ConfigError if it is missing or not a JSON object."""
    import json

    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("config: cannot read %s" % path) from None
    try:
        cfg = json.loads(text)
    except ValueError:
        # The parser's own message may quote the text around the error, secret included.
        raise ConfigError("config: %s is not valid JSON" % path) from None
    if not isinstance(cfg, dict):
        raise ConfigError("config: %s must hold a JSON object" % path)
    return cfg


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


def _check_core(cfg, board):
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
    if not isinstance(cfg["tls_insecure"], bool):
        raise ConfigError("tls_insecure: must be true or false")
    if cfg["log_level"] not in LOG_LEVELS:
        raise ConfigError("log_level: must be one of " + ", ".join(LOG_LEVELS))
    if cfg["transport"] not in ("http", "mqtt"):
        raise ConfigError('transport: must be "http" or "mqtt"')

    if cfg["actuators"] is not None:
        from kpnthings import downlink

        pins = getattr(board, "OUTPUT_PINS", getattr(board, "PINS", None))
        try:
            cfg["actuators"] = downlink.validate_spec(cfg["actuators"], pins)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def _is_identifier(name):
    for c in name:
        if not (c == "_" or "a" <= c <= "z" or "0" <= c <= "9"):
            return False
    return not ("0" <= name[0] <= "9")


def _optional_module(name):
    """Import kpnthings.<name> if this firmware ships it, else None (any other error raises)."""
    try:
        return __import__("kpnthings." + name, None, None, (name,))
    except ImportError as e:
        if name in str(e):
            return None
        raise


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


def _validate_extensions(cfg, board):
    """Hook points: keys owned by optional modules are validated by those modules.

    Each hook gets the merged config (and the board's pin set where pins matter) and raises
    ValueError naming its field; the result replaces the raw value.
    """
    _check_limits(cfg)
    if cfg.get("sensors") is not None:
        mod = _optional_module("sensors")
        if mod is None:
            raise ConfigError("sensors: this firmware has no sensor drivers (kpnthings.sensors)")
        # Actuator pins and names are taken: a sensor on the LED pin, or a reading named like
        # an actuator whose state is echoed, would be a conflict the user must fix.
        acts = cfg["actuators"]
        if acts is None:
            acts = getattr(board, "ACTUATORS", None) or {}
        checked = mod.validate(
            cfg["sensors"],
            getattr(board, "PINS", None),
            getattr(board, "ADC_PINS", None),
            [acts[name]["pin"] for name in sorted(acts)],
            sorted(acts),
        )
        if checked is not None:
            cfg["sensors"] = checked
    if cfg["transport"] == "mqtt":
        mod = _optional_module("mqtt")
        if mod is None:
            raise ConfigError('transport: "mqtt" needs kpnthings.mqtt, which is not installed')
        mod.validate_config(cfg)


def _scrub(msg, cfg):
    """Belt and braces: whatever a check (ours or an extension's) wrote, no secret leaves."""
    for key in _SECRET_KEYS:
        s = cfg.get(key)
        if isinstance(s, str) and len(s) >= 4 and s in msg:
            msg = msg.replace(s, "***")
    return msg


def validate(cfg, board=None):
    """Return a new config dict: defaults merged, every value checked.

    board, when given, is the board module: its PINS/OUTPUT_PINS check the pins named by
    actuators and sensors, and its HAS_WIFI decides whether wifi_ssid is required.
    """
    if not isinstance(cfg, dict):
        raise ConfigError("config: must be a JSON object")
    merged = dict(DEFAULTS)
    merged.update(cfg)
    try:
        _check_core(merged, board)
        _validate_extensions(merged, board)
    except ValueError as e:
        raise ConfigError(_scrub(str(e), merged)) from None
    return merged


def unknown_keys(cfg):
    """Keys nobody claims, sorted: most likely typos worth a warning at boot."""
    known = CORE_KEYS | EXTENSION_KEYS
    out = []
    for k in cfg:
        name = str(k)
        if k in known or name.startswith("_"):
            continue
        if any(name.startswith(p) for p in EXTENSION_PREFIXES):
            continue
        out.append(name)
    return sorted(out)
