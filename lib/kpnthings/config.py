"""config.json on the board: read it, merge the defaults, check what the firmware reads.

This is the board's short check, run once per boot by kpnthings.wiring and unloaded before the
loop. Every key the firmware reads gets the right type and range, the required keys must be
there, and a bad value stops the boot with one line naming the field and saying what is wrong,
never the value (so never the secret or the Wi-Fi password). The actuator spec and the sensor
entries are normalised here as well (kpnthings.downlink_spec, kpnthings.sensors.schema: defaults
filled in, pins checked against the board's pin set and pin rules, every reading named), so a
config.json edited by hand on the board works as well as a deployed one.

The full check runs on the host, before anything is copied (`kpnthings deploy`, `kpnthings
check-config`: kpnthings_tools.config_check). It gives longer messages and checks what the board
trusts: SenML names (characters, repeats), pins shared by two sensors or by a sensor and an
actuator, unknown fields in sensor and actuator entries, the board name, text in mqtt_* keys,
retry_cap_s against retry_base_s. It ends by running this check, so a config that passes there
boots here. docs/configuration.md says which check owns what.
"""

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
    "health_every": 60,
}
REQUIRED = ("dvnuuid", "secret", "board")
# Whole numbers: key -> (smallest, largest). null keeps the firmware's default (cycles: run
# forever), except for interval_s. The outbox needs room for one segment; a body below 256 bytes
# cannot hold a base name and a reading.
INTS = {
    "interval_s": (1, 86400),
    "cycles": (1, 1 << 29),
    "outbox_max_bytes": (2048, 1 << 24),
    "dead_max_bytes": (512, 1 << 24),
    "max_body": (256, 16384),
    "retry_base_s": (1, 86400),
    "retry_cap_s": (1, 86400),
    "auth_retry_s": (10, 86400),
    "idle_close_s": (0, 86400),
    # Dead-link recovery (kpnthings.flush): 0 turns each off. reset_after_h stays within the
    # half period of ticks_ms on every port.
    "link_drop_after": (0, 1000),
    "reset_after_drops": (0, 1000),
    "reset_after_h": (0, 144),
    # requests a flush may spend finding the records KPN refuses (kpnthings.flush_refused)
    "split_requests": (1, 1000),
    "ntp_resync_h": (0, 144),  # hours between NTP syncs once the clock is set; 0: never
    # seconds readings without a time wait for NTP to date them; 0: they go at once
    "undated_wait_s": (0, 86400),
    # with "sleep": "deep", a wake sends every this many cycles; the others only store
    "send_every_cycles": (1, 10000),
    # cycles between two sets of health records (docs/health.md); 0 or null: none at all
    "health_every": (0, 1 << 20),
}
# Keys with a few allowed values (true/false, never 0/1, though they compare equal).
CHOICES = {
    "tls_insecure": (False, True),
    "log_level": ("debug", "info", "warning", "error"),
    "transport": ("http", "mqtt"),
}
# Other keys the firmware reads: paths (ca_files: a list of them), and keys checked on their own
# (sensors and wdt_ms below, every mqtt_* key by kpnthings.mqtt_config, previous_identities:
# the identities the board had before, whose queued readings go out under them, see
# kpnthings.wiring); and "name", the device's label from `kpnthings new-device --name`, which
# the host tools show and the board carries unread. Any key not named here or above is
# reported at boot as a likely typo.
OTHER_KEYS = (
    "ca_file",
    "outbox_dir",
    "sensors",
    "wdt_ms",
    "name",
    "ca_files",
    "previous_identities",
    "sleep",
    "update",
)
SECRET_KEYS = ("secret", "wifi_password", "mqtt_password")


class ConfigError(ValueError):
    """config.json is unusable; the message names the field and never holds a secret."""


def load_config(path):
    """Read and parse a JSON config file; ConfigError if it is missing or not a JSON object."""
    import json

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise ConfigError("config: cannot read " + path) from None
    # MicroPython's json takes a comma before } or ], which JSON (and so every host tool,
    # `kpnthings check-config` first) refuses: the board refuses it too, so that what boots
    # here is what the host accepts. Outside strings, the last byte that is not white space
    # before a } or ] must not be a comma. Bytes, not characters: a str's characters would
    # each be interned on MicroPython, for good.
    quoted = escaped = False
    last = 0
    for c in data:
        if quoted:
            if escaped:
                escaped = False
            elif c == 92:  # a backslash
                escaped = True
            elif c == 34:  # "
                quoted = False
        elif (c == 125 or c == 93) and last == 44:  # } or ] after ,
            raise ConfigError("config: %s has a comma before a } or ]: JSON allows none" % path)
        elif c > 32:  # not white space
            last = c
            quoted = c == 34
    try:
        cfg = json.loads(data.decode())  # as text: CPython would take a UTF-8 BOM from bytes
    except ValueError:  # its message may quote the text around the error, secret included
        cfg = None
    if type(cfg) is not dict:
        raise ConfigError("config: %s is not valid JSON for one object" % path)
    return cfg


def _need(ok, key, what):
    if not ok:
        raise ConfigError("%s: must be %s" % (key, what))


def validate(cfg, board=None, rules=None):
    """Return a new config dict: defaults merged, every value the firmware reads checked.

    board, when given, is the board module: its PINS/OUTPUT_PINS/ADC_PINS check the pins named
    by actuators and sensors, and its HAS_WIFI decides whether wifi_ssid is required.
    rules, when given, is the board's pin rules module (its pin_rules(): boards/esp32_pins.py):
    the pins to keep free, and what each sensor type cannot do on which.
    """
    _need(type(cfg) is dict, "config", "a JSON object")
    merged = dict(DEFAULTS)
    merged.update(cfg)
    try:
        _check(merged, board, rules)
    except ValueError as e:  # ours, the extensions' and auth's ("secret must be ...")
        msg = str(e)
        if ":" not in msg:  # only auth's have no colon: "secret: must be ..."
            msg = msg.replace(" ", ": ", 1)
        raise ConfigError(scrub(msg, merged)) from None
    return merged


def _check(cfg, board, rules):
    import json

    from kpnthings import auth

    for key in REQUIRED:
        _need(key in cfg, key, "given (required)")
    cfg["dvnuuid"] = auth.check_dvnuuid(cfg["dvnuuid"])  # lowercase, as the base name wants
    auth.check_secret(cfg["secret"])
    x = cfg["url"]
    parts = x.split("/") if type(x) is str else ()
    _need(
        len(parts) > 2 and parts[0] in ("https:", "http:") and parts[2] and " " not in x,
        "url",
        "https://host or http://host",
    )
    cfg["url"] = x.rstrip("/")
    x = cfg["board"]
    _need(type(x) is str and x, "board", "a board name")
    lo = 1 if getattr(board, "HAS_WIFI", x != "unix") else 0
    x = cfg["wifi_ssid"]
    _need(type(x) is str and lo <= len(x) <= 32, "wifi_ssid", "%d-32 characters" % lo)
    x = cfg["wifi_password"]
    _need(
        type(x) is str and len(x) <= 64 and not 0 < len(x) < 8,
        "wifi_password",
        "8-64 characters or empty",
    )
    for key in INTS:
        x = cfg.get(key)
        lo, hi = INTS[key]
        _need(
            (x is None and key != "interval_s") or (type(x) is int and lo <= x <= hi),
            key,
            "a whole number from %d to %d" % (lo, hi),
        )
    x = cfg["timeout_s"]
    # Every blocking step must end before the RP2040 watchdog (about 8.3 s) fires.
    _need(type(x) in (int, float) and 0 < x < 8, "timeout_s", "seconds above 0, below 8")
    # A send may block for timeout_s between two feeds: the watchdog must wait longer, and a
    # board's own limit (the RP2040's 8.3 s) may be below what wdt_ms asks for.
    need = int(x * 1000) + 1000
    cap = getattr(board, "WDT_MAX_MS", None)
    x = cfg.get("wdt_ms")
    _need(
        not x or (type(x) is int and x >= need and (cap is None or cap >= need)),
        "wdt_ms",
        "0 or null (off), or a whole number of ms at least %d (timeout_s + 1 s)%s"
        % (need, "" if cap is None else "; this board's watchdog waits at most %d" % cap),
    )
    for key in CHOICES:
        x = cfg[key]
        allowed = CHOICES[key]
        _need(x in allowed and type(x) is type(allowed[0]), key, "one of %s" % json.dumps(allowed))
    # sleep: "light" (the default: the loop waits between cycles) or "deep" (a reset between
    # cycles: kpnthings.deepsleep). The two words are found in this message, not written as
    # short literals, which every board would intern for good: a light config pays nothing.
    # The checked config keeps the key set for "deep" only. Deep sleep needs an RTC that runs
    # through it (the board's rtc_kept: the ESP32); an rp2's deepsleep() is a reset that loses
    # the clock and RAM (docs/boards/pico_w.md), so there it is refused, not quietly light.
    x = cfg.get("sleep")
    what = '"deep" or "light" (the default)'
    at = what.find(json.dumps(x)) if type(x) is str and x.isalpha() else -1
    _need(x is None or at >= 0, "sleep", what)
    _need(
        at or board is None or hasattr(board, "rtc_kept"),
        "sleep",
        '"light" on this board: its deepsleep() is a reset that loses the clock',
    )
    cfg["sleep"] = x if at == 0 else None
    # Signed updates count boots to roll back a version that never reaches KPN, and poll their
    # offer at boot: with deep sleep every wake is a boot, most of them without Wi-Fi.
    _need(not (at == 0 and cfg.get("update")), "update", 'left out with "sleep": "deep"')
    for key in OTHER_KEYS[:2]:
        x = cfg.get(key)
        _need(x is None or (type(x) is str and x), key, "a path, or null")
    x = cfg.get("ca_files")  # more CAs, trusted together with ca_file's
    _need(
        x is None or (type(x) is list and x and not [p for p in x if type(p) is not str or not p]),
        "ca_files",
        "a list of paths, or null",
    )
    key = "previous_identities"
    x = cfg.get(key)
    if x is not None:
        olds = []  # a copy, as the host's check makes it: the raw config stays as written
        for old in x if type(x) is list and x else [None]:
            if type(old) is not dict:
                raise ConfigError(key + ': must be a list of {"dvnuuid": ..., "secret": ...}')
            try:
                olds.append(
                    {
                        "dvnuuid": auth.check_dvnuuid(old.get("dvnuuid")),
                        "secret": auth.check_secret(old.get("secret")),
                    }
                )
            except ValueError as e:  # auth's "secret must be ...": never the value
                raise ConfigError("previous_identities[%d]: %s" % (len(olds), e)) from None
        cfg[key] = olds

    x = cfg["actuators"]
    if x is not None:
        from kpnthings import downlink_spec

        pins = getattr(board, "OUTPUT_PINS", getattr(board, "PINS", None))
        x = cfg["actuators"] = downlink_spec.validate_spec(x, pins, rules)
    key = "sensors"
    try:
        if cfg.get(key) is not None:
            from kpnthings import sensors

            # Readings are named around what is taken: actuator states, the loop's own records.
            cfg[key] = sensors.validate(
                cfg[key],
                getattr(board, "PINS", None),
                getattr(board, "ADC_PINS", None),
                sorted(x if x is not None else getattr(board, "ACTUATORS", None) or ()),
                rules,
            )
        key = "transport"
        if cfg[key] == "mqtt":
            from kpnthings import mqtt_config

            mqtt_config.validate(cfg)
    except ImportError:  # a board deployed for another config (kpnthings deploy brings them)
        raise ConfigError(key + ": needs a module this board lacks: deploy again") from None


def scrub(msg, cfg):
    """Belt and braces: whatever a check wrote (an extension's, a board's), no secret leaves."""
    olds = cfg.get("previous_identities")
    for x in [cfg.get(key) for key in SECRET_KEYS] + (olds if type(olds) is list else []):
        if type(x) is dict:  # an earlier identity's
            x = x.get("secret")
        if type(x) is str and len(x) > 3:
            msg = msg.replace(x, "***")
    return msg


def unknown_keys(cfg):
    """Keys nobody reads, sorted: most likely typos, worth a warning at boot."""
    out = []
    for k in cfg:
        if not (k in DEFAULTS or k in INTS or k in REQUIRED + OTHER_KEYS or k[:1] == "_"):
            if k[:5] != "mqtt_":
                out.append(k)
    return sorted(out)
