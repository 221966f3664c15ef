"""What the config-check tests share: a good esp32 config (with a secret and a Wi-Fi password no
message may hold), the same with changes, the refusal's message, and a config written to a file."""

import json

import pytest

from kpnthings.config import ConfigError
from kpnthings_tools.config_check import validate

SECRET = "Zq81hLw0PpX4vR9tTnY6uB2eKj7sDc3MfA5g"
WIFI_PW = "correct-horse-battery"
GOOD = {
    "dvnuuid": "0B7F8C3E-5A2D-4C1E-9F6A-2D3E4F5A6B7C",
    "secret": SECRET,
    "url": "http://127.0.0.1:8080/",
    "board": "esp32",
    "wifi_ssid": "home",
    "wifi_password": WIFI_PW,
    "interval_s": 30,
}


def with_(**changes):
    cfg = dict(GOOD)
    for k, v in changes.items():
        if v is KeyError:
            del cfg[k]
        else:
            cfg[k] = v
    return cfg


def error(cfg, board=None):
    with pytest.raises(ConfigError) as info:
        validate(cfg, board)
    msg = str(info.value)
    assert SECRET not in msg, msg
    assert WIFI_PW not in msg, msg
    return msg


def _write(tmp_path, cfg, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path
