"""The mqtt_* keys of config.json on the board: their defaults and their short check (boot only).

KPN's broker details (host, port, topics, credentials) are not in the documentation we hold, so
nothing here guesses them: mqtt_host and mqtt_uplink_topic must be copied from the KPN Things
Portal (or name your own broker). config.py and mqtt_transport run `validate`, importing this
module only then: every value the MQTT client reads gets its type and range, and the derived
defaults (port, keepalive, client id, user name, topics with {dvnuuid} replaced). Errors are
ValueErrors whose message starts with the field's name and never holds the password. The host's
full check (kpnthings_tools.mqtt_check, run by deploy) also refuses control characters, a host
with a scheme or port, and a {token} the config never fills in.
"""

from kpnthings import mqtt_packets

DEFAULTS = {
    "mqtt_host": None,  # required: from the Portal (or your own broker)
    "mqtt_port": None,  # None: 8883 with TLS, 1883 without
    "mqtt_tls": True,
    "mqtt_ca_file": None,  # None: use ca_file (DER), as the HTTPS uplink does
    "mqtt_client_id": None,  # None: the dvnuuid
    "mqtt_username": None,  # None: the device URN urn:dev:DVNUUID:<uuid>: ; "" sends none
    "mqtt_password": None,  # None: no password
    "mqtt_uplink_topic": None,  # required; "{dvnuuid}" is replaced
    "mqtt_downlink_topic": None,  # None: no downlinks over MQTT; "{dvnuuid}" is replaced
    "mqtt_keepalive_s": None,  # None: 60, or twice interval_s if longer (survives the sleep)
    "mqtt_qos": 1,
    "mqtt_clean_session": True,
    "mqtt_token": False,  # true: send the Things-Message-Token as mqtt_token_in says
    "mqtt_token_in": "topic",  # "topic": {token} in the uplink topic, else "/<token>" appended;
    # "wrapper": payload {"token":"<hex>","body":<pack>}
}
KEYS = tuple(DEFAULTS)
_TEXT = (
    "mqtt_host",
    "mqtt_ca_file",
    "mqtt_client_id",
    "mqtt_username",
    "mqtt_password",
    "mqtt_uplink_topic",
    "mqtt_downlink_topic",
)


def _need(ok, key, what):
    if not ok:
        raise ValueError(key + ": must be " + what)


def validate(cfg):
    """Check the mqtt_* keys of `cfg` and fill in their defaults, in place; returns `cfg`.

    Needs `dvnuuid`. Raises ValueError whose message starts with the field's name; the password
    is never part of a message.
    """
    from kpnthings import auth

    for key in KEYS:
        if key not in cfg:
            cfg[key] = DEFAULTS[key]
    uuid = auth.check_dvnuuid(cfg.get("dvnuuid"))
    for key in ("mqtt_tls", "mqtt_clean_session", "mqtt_token"):
        _need(type(cfg[key]) is bool, key, "true or false")
    if cfg["mqtt_port"] is None:
        cfg["mqtt_port"] = 8883 if cfg["mqtt_tls"] else 1883
    x = cfg["mqtt_keepalive_s"]
    if x is None:
        # A link quiet for 1.5 keepalives is dead (section 3.1.2.10): the sleep between cycles
        # must not kill it, or every uplink would pay a new TCP + TLS handshake.
        x = cfg.get("interval_s")
        x = cfg["mqtt_keepalive_s"] = min(65535, x * 2) if type(x) is int and x > 30 else 60
    for key in ("mqtt_port", "mqtt_keepalive_s"):
        x = cfg[key]
        _need(type(x) is int and 1 <= x <= 65535, key, "a whole number 1-65535")
    _need(cfg["mqtt_qos"] in (0, 1) and type(cfg["mqtt_qos"]) is int, "mqtt_qos", "0 or 1")
    _need(cfg["mqtt_token_in"] in ("topic", "wrapper"), "mqtt_token_in", '"topic" or "wrapper"')
    if cfg["mqtt_client_id"] is None:
        cfg["mqtt_client_id"] = uuid
    if cfg["mqtt_username"] is None:
        cfg["mqtt_username"] = auth.base_name(uuid)
    for key in _TEXT:
        x = cfg[key]
        _need(x is None or type(x) is str, key, "a string")
    for key in ("mqtt_host", "mqtt_uplink_topic"):
        _need(cfg[key], key, "given when transport is mqtt (copy it from the KPN Things Portal)")
    _need(
        cfg["mqtt_password"] is None or cfg["mqtt_username"] != "",
        "mqtt_password",
        "given with an mqtt_username (MQTT 3.1.1 sends no password alone)",
    )
    for key in ("mqtt_uplink_topic", "mqtt_downlink_topic"):
        x = cfg[key]
        if x is not None:
            x = cfg[key] = x.replace("{dvnuuid}", uuid)
            mqtt_packets.check_topic(x.replace("{token}", "t"), key, key[5] == "d")
    return cfg
