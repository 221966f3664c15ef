"""The mqtt_* keys of config.json: their full check, on the host (kpnthings_tools.config_check).

KPN's broker details (host, port, topics, credentials) are not in the documentation we hold, so
nothing here guesses them: mqtt_host and mqtt_uplink_topic must be copied from the KPN Things
Portal (or name your own broker). The defaults are the board's (kpnthings.mqtt_config, whose
short check runs at every boot); this check adds what the board trusts: control characters, a
host given with a scheme or port, a {token} the config never fills in. Every error is a
ValueError whose message starts with the field's name and never holds the password.
"""

from kpnthings import mqtt_packets
from kpnthings.mqtt_config import DEFAULTS, KEYS


def _text(cfg, key, required=False, max_len=256, empty_ok=False):
    v = cfg[key]
    if v is None:
        if required:
            raise ValueError(
                "%s: missing (required when transport is mqtt; copy it from the KPN Things Portal)"
                % key
            )
        return
    if not isinstance(v, str) or (not v and not empty_ok) or len(v) > max_len:
        raise ValueError(
            "%s: must be a string of %d-%d characters" % (key, 0 if empty_ok else 1, max_len)
        )
    for ch in v:
        if ch < " " or ch == "\x7f":
            raise ValueError("%s: must not contain control characters" % key)


def _flag(cfg, key):
    if not isinstance(cfg[key], bool):
        raise ValueError("%s: must be true or false" % key)


def _whole(cfg, key, lo, hi):
    v = cfg[key]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError("%s: must be a whole number %d-%d" % (key, lo, hi))


def validate(cfg):
    """Check the mqtt_* keys of `cfg` and fill in their defaults, in place; returns `cfg`.

    Needs `dvnuuid` (already checked by config_check). Raises ValueError whose message starts with
    the field's name; the password is never part of a message.
    """
    from kpnthings import auth

    for key in KEYS:
        if key not in cfg:
            cfg[key] = DEFAULTS[key]
    if "dvnuuid" not in cfg:
        raise ValueError("dvnuuid: missing (required)")
    uuid = auth.check_dvnuuid(cfg["dvnuuid"])
    _text(cfg, "mqtt_host", required=True, max_len=253)
    if " " in cfg["mqtt_host"] or "/" in cfg["mqtt_host"]:
        raise ValueError("mqtt_host: must be a host name or IP address, without scheme or port")
    for key in ("mqtt_tls", "mqtt_clean_session", "mqtt_token"):
        _flag(cfg, key)
    if cfg["mqtt_port"] is None:
        cfg["mqtt_port"] = 8883 if cfg["mqtt_tls"] else 1883
    _whole(cfg, "mqtt_port", 1, 65535)
    if cfg["mqtt_keepalive_s"] is None:
        # A link quiet for 1.5 keepalives is dead (section 3.1.2.10): the sleep between cycles
        # must not kill it, or every uplink would pay a new TCP + TLS handshake.
        iv = cfg.get("interval_s")
        ok = isinstance(iv, int) and not isinstance(iv, bool)
        cfg["mqtt_keepalive_s"] = min(65535, iv * 2) if ok and iv * 2 > 60 else 60
    _whole(cfg, "mqtt_keepalive_s", 1, 65535)
    if cfg["mqtt_qos"] not in (0, 1) or isinstance(cfg["mqtt_qos"], bool):
        raise ValueError(
            "mqtt_qos: must be 0 or 1 (1 is needed for the outbox to know a reading arrived)"
        )
    _text(cfg, "mqtt_ca_file")
    _text(cfg, "mqtt_client_id", max_len=65535)
    if cfg["mqtt_client_id"] is None:
        cfg["mqtt_client_id"] = uuid
    _text(cfg, "mqtt_username", max_len=65535, empty_ok=True)
    if cfg["mqtt_username"] is None:
        cfg["mqtt_username"] = auth.base_name(uuid)
    pw = cfg["mqtt_password"]
    if pw is not None and (not isinstance(pw, str) or len(pw) > 65535):
        raise ValueError("mqtt_password: must be a string (or null for none)")
    if pw is not None and not cfg["mqtt_username"]:
        raise ValueError("mqtt_password: needs mqtt_username (MQTT 3.1.1 sends no password alone)")
    if cfg["mqtt_token_in"] not in ("topic", "wrapper"):
        raise ValueError('mqtt_token_in: must be "topic" or "wrapper"')
    _text(cfg, "mqtt_uplink_topic", required=True, max_len=1024)
    up = cfg["mqtt_uplink_topic"].replace("{dvnuuid}", uuid)
    mqtt_packets.check_topic(up.replace("{token}", "t"), "mqtt_uplink_topic")
    in_topic = cfg["mqtt_token"] and cfg["mqtt_token_in"] == "topic"  # noqa: S105
    if "{token}" in up and not in_topic:
        raise ValueError(
            'mqtt_uplink_topic: holds {token} but mqtt_token is not true with mqtt_token_in "topic"'
        )
    cfg["mqtt_uplink_topic"] = up
    _text(cfg, "mqtt_downlink_topic", max_len=1024)
    down = cfg["mqtt_downlink_topic"]
    if down is not None:
        if "{token}" in down:
            raise ValueError("mqtt_downlink_topic: must not hold {token}")
        down = down.replace("{dvnuuid}", uuid)
        mqtt_packets.check_topic(down, "mqtt_downlink_topic", wildcards=True)
        cfg["mqtt_downlink_topic"] = down
    return cfg
