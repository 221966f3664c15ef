"""The board's short check of config.json (kpnthings.config): every key the firmware reads is
checked, each mistake names its field and says what is wrong, and no message holds a secret.

The host's full check has its own tests (tests/host/test_config_check.py)."""

from _support import raises
from kpnthings.config import ConfigError, load_config, scrub, unknown_keys, validate

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


class Board:
    HAS_WIFI = True
    PINS = {1, 2, 3, 4, 32}
    OUTPUT_PINS = {1, 2, 3}
    ADC_PINS = {32}
    ACTUATORS = {"led": {"type": "digital", "pin": 2}}


class HostBoard:
    HAS_WIFI = False
    PINS = {"LED", 5}


def with_(**changes):
    cfg = dict(GOOD)
    for k, v in changes.items():
        if v is KeyError:
            del cfg[k]
        else:
            cfg[k] = v
    return cfg


def error(cfg, board=None):
    msg = str(raises(ConfigError, validate, cfg, board))
    assert SECRET not in msg, msg
    assert WIFI_PW not in msg, msg
    return msg


def test_good_config_gets_defaults():
    cfg = validate(GOOD)
    assert cfg["dvnuuid"] == "0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c"  # lowercased
    assert cfg["url"] == "http://127.0.0.1:8080"  # trailing slash dropped
    assert cfg["cycles"] is None
    assert cfg["timeout_s"] == 5
    assert cfg["tls_insecure"] is False
    assert cfg["ca_file"] is None
    assert cfg["log_level"] == "info"
    assert cfg["actuators"] is None
    assert cfg["transport"] == "http"
    assert cfg["interval_s"] == 30
    assert GOOD["dvnuuid"] == "0B7F8C3E-5A2D-4C1E-9F6A-2D3E4F5A6B7C"  # the input is not changed


def test_unix_board_needs_no_wifi():
    cfg = with_(board="unix", wifi_ssid=KeyError, wifi_password=KeyError)
    assert validate(cfg, HostBoard)["wifi_ssid"] == ""
    assert validate(cfg)["board"] == "unix"
    assert error(with_(wifi_ssid=KeyError), Board).startswith("wifi_ssid:")


def test_each_bad_field_is_named_and_what_is_wrong_is_said():
    cases = [
        ("dvnuuid", with_(dvnuuid=KeyError), "given"),
        ("dvnuuid", with_(dvnuuid="not-a-uuid"), "UUID"),
        ("dvnuuid", with_(dvnuuid=12), "UUID"),
        ("secret", with_(secret=KeyError), "given"),
        ("secret", with_(secret="short"), "30-100"),
        ("secret", with_(secret=SECRET + "!"), "letters and digits"),
        ("secret", with_(secret=None), "string"),
        ("board", with_(board=KeyError), "given"),
        ("board", with_(board=3), "board name"),
        ("board", with_(board=""), "board name"),
        ("url", with_(url="ftp://example.com"), "https://"),
        ("url", with_(url="https://"), "host"),
        ("url", with_(url="https:/x"), "host"),
        ("url", with_(url="http://a b"), "host"),
        ("url", with_(url=None), "https://"),
        ("wifi_ssid", with_(wifi_ssid="x" * 33), "1-32 characters"),
        ("wifi_ssid", with_(wifi_ssid=5), "1-32 characters"),
        ("wifi_password", with_(wifi_password="short"), "8-64"),
        ("wifi_password", with_(wifi_password="p" * 65), "8-64"),
        ("wifi_password", with_(wifi_password=12345678), "8-64"),
        ("interval_s", with_(interval_s=0), "1 to 86400"),
        ("interval_s", with_(interval_s=1.5), "whole number"),
        ("interval_s", with_(interval_s="60"), "whole number"),
        ("interval_s", with_(interval_s=True), "whole number"),
        ("interval_s", with_(interval_s=None), "whole number"),
        ("cycles", with_(cycles=0), "whole number"),
        ("cycles", with_(cycles="3"), "whole number"),
        ("outbox_max_bytes", with_(outbox_max_bytes=100), "2048"),
        ("max_body", with_(max_body=16385), "16384"),
        ("auth_retry_s", with_(auth_retry_s=False), "whole number"),
        ("timeout_s", with_(timeout_s=0), "above 0"),
        ("timeout_s", with_(timeout_s=8), "below 8"),
        ("timeout_s", with_(timeout_s=float("nan")), "seconds"),
        ("timeout_s", with_(timeout_s="5"), "seconds"),
        ("ca_file", with_(ca_file=""), "path"),
        ("ca_file", with_(ca_file=5), "path"),
        ("outbox_dir", with_(outbox_dir=["q"]), "path"),
        ("tls_insecure", with_(tls_insecure="yes"), "true"),
        ("tls_insecure", with_(tls_insecure=1), "true"),
        ("log_level", with_(log_level="loud"), "warning"),
        ("transport", with_(transport="carrier-pigeon"), "mqtt"),
        ("actuators", with_(actuators=[1]), "object"),
        ("actuators.led.pin", with_(actuators={"led": {"type": "digital", "pin": 4}}), "output"),
        ("actuators.led.type", with_(actuators={"led": {"type": "servo", "pin": 2}}), "pwm"),
        ("sensors", with_(sensors={"type": "dht22"}), "list"),
        ("sensors[0]", with_(sensors=[{"type": "dht22", "pin": 9}]), "no pin 9"),
    ]
    for field, cfg, what in cases:
        msg = error(cfg, Board)
        assert msg.startswith(field + ":") or msg.startswith(field + " "), (field, msg)
        assert what in msg, (field, what, msg)


def test_secret_never_in_message_even_when_misplaced():
    # A user pastes the secret into the wrong field: the message must still not show it.
    msg = error(with_(url="ftp://" + SECRET))
    assert msg.startswith("url:")
    msg = error(with_(secret=SECRET + "-x"))
    assert msg.startswith("secret:") and "character 37" in msg
    msg = error(with_(sensors=[{"type": "digital", "pin": SECRET}]), Board)
    assert msg.startswith("sensors[0]") and "***" in msg
    assert scrub("a %s b %s" % (SECRET, WIFI_PW), GOOD) == "a *** b ***"


def test_actuators_are_normalised_against_the_board():
    cfg = validate(with_(actuators={"led": {"type": "digital", "pin": 2}}), Board)
    assert cfg["actuators"] == {"led": {"type": "digital", "pin": 2, "active_low": False}}
    fan = {"fan": {"type": "pwm", "pin": 3}}
    cfg = validate(with_(actuators=fan), Board)
    assert cfg["actuators"]["fan"] == {"type": "pwm", "pin": 3, "freq": 1000, "min": 0, "max": 100}


def test_sensors_are_normalised_and_named_around_the_actuators():
    cfg = validate(with_(sensors=[{"type": "digital", "pin": 1}]), Board)
    assert cfg["sensors"] == [
        {"type": "digital", "pin": 1, "pull": None, "invert": False, "names": ["digital"]}
    ]
    # A default name steps around an actuator's (its state is echoed under that name).
    acts = {"digital": {"type": "digital", "pin": 3}}
    cfg = validate(with_(actuators=acts, sensors=[{"type": "digital", "pin": 1}]), Board)
    assert cfg["sensors"][0]["names"] == ["digital2"]
    # An empty list is a list: no sensors, nothing refused.
    assert validate(with_(sensors=[]), Board)["sensors"] == []


def test_a_deployed_config_reads_the_same_again():
    raw = with_(
        actuators={"fan": {"type": "pwm", "pin": 3, "max": 10}},
        sensors=[{"type": "analog", "pin": 32, "name": "soil"}, {"type": "dht22", "pin": 4}],
    )
    once = validate(raw, Board)
    assert validate(once, Board) == once


def test_ca_files_are_more_paths_trusted_together_with_ca_file():
    # The next root deployed beside the current one before the server switches (issue 19).
    cfg = validate(with_(ca_file="ca.der", ca_files=["ca-next.der", "/certs/spare.der"]))
    assert cfg["ca_files"] == ["ca-next.der", "/certs/spare.der"]
    assert validate(with_(ca_files=None))["ca_files"] is None
    assert "ca_files" not in validate(GOOD)  # no default: the loop's config dict stays small
    for bad in ("ca-next.der", [], [""], ["a.der", 5], {"a": 1}, True):
        msg = error(with_(ca_files=bad), Board)
        assert msg == "ca_files: must be a list of paths, or null", (bad, msg)
    assert unknown_keys(with_(ca_files=["a.der"])) == []


def test_non_object_config_refused():
    assert error([1, 2]).startswith("config:")


def test_unknown_keys_are_listed_not_refused():
    cfg = with_(intervall_s=5, _comment="hi", sensors=None, mqtt_host="h", outbox_dir="/q")
    cfg.update(wdt_ms=8000, max_body=512, retry_cap_s=60)
    assert validate(cfg)["intervall_s"] == 5
    assert unknown_keys(cfg) == ["intervall_s"]


def test_load_config_errors():
    assert "cannot read" in str(raises(ConfigError, load_config, "/nonexistent/config.json"))


def test_a_trailing_comma_is_refused_on_every_runtime():
    # Issue 19: MicroPython's json takes {"a": 1,}, which the host tools refuse, so a config
    # edited by hand booted on the board and failed `kpnthings check-config`.
    import os

    from kpnthings.compat import ticks_ms

    path = "/tmp/kpn-test-config-comma-%d.json" % ticks_ms()
    refused = (
        '{"secret": "%s", "interval_s": 30,}' % SECRET,
        '{"sensors": [{"type": "dht22", "pin": 4},\n  ]}',
        '{"a": {"b": 1 , \t}}',
    )
    kept = (
        ('{"a": ",}", "b": "q\\",]"}', {"a": ",}", "b": 'q",]'}),
        ('{"a": "\\\\", "b": [1, 2]}', {"a": "\\", "b": [1, 2]}),
        ('{"a": {}, "b": [], "c": "x,"}', {"a": {}, "b": [], "c": "x,"}),
    )
    try:
        for text in refused:
            with open(path, "w") as f:
                f.write(text)
            msg = str(raises(ConfigError, load_config, path))
            assert msg == "config: %s has a comma before a } or ]: JSON allows none" % path, msg
            assert SECRET not in msg
        for text, want in kept:
            with open(path, "w") as f:
                f.write(text)
            assert load_config(path) == want, text
    finally:
        os.remove(path)


class FakeMqtt:
    calls = []

    @staticmethod
    def validate(cfg):
        FakeMqtt.calls.append(cfg["transport"])
        if "mqtt_host" not in cfg:
            raise ValueError("mqtt_host: missing (required for transport mqtt); secret " + SECRET)


def test_mqtt_keys_go_to_the_mqtt_check_and_are_scrubbed():
    import sys

    import kpnthings

    saved = sys.modules.get("kpnthings.mqtt_config")
    saved_attr = kpnthings.__dict__.get("mqtt_config")
    sys.modules["kpnthings.mqtt_config"] = FakeMqtt
    kpnthings.mqtt_config = FakeMqtt
    try:
        msg = error(with_(transport="mqtt"))
        assert msg.startswith("mqtt_host:"), msg
        assert "***" in msg
        assert validate(with_(transport="mqtt", mqtt_host="h"))["mqtt_host"] == "h"
        assert FakeMqtt.calls == ["mqtt", "mqtt"]
    finally:
        if saved is None:
            del sys.modules["kpnthings.mqtt_config"]
        else:
            sys.modules["kpnthings.mqtt_config"] = saved
        if saved_attr is None:
            del kpnthings.mqtt_config
        else:
            kpnthings.mqtt_config = saved_attr


def test_the_watchdog_must_outlast_one_send():
    # A send may take timeout_s before the next feed (issue 17, finding 1): a watchdog that
    # fires sooner resets the board in the middle of every slow uplink.
    class PicoW:
        PINS = OUTPUT_PINS = {2, "LED"}
        WDT_MAX_MS = 8300

    assert validate(with_(wdt_ms=6000))["wdt_ms"] == 6000  # timeout_s 5 + 1 s
    assert validate(with_(wdt_ms=0))["wdt_ms"] == 0  # off
    assert validate(with_(timeout_s=7, wdt_ms=8000))["wdt_ms"] == 8000
    for cfg, board, say in (
        (with_(wdt_ms=5999), None, "at least 6000"),
        (with_(timeout_s=7.5, wdt_ms=8000), None, "at least 8500"),
        (with_(wdt_ms=500), None, "at least 6000"),
        (with_(wdt_ms="8s"), None, "whole number"),
        (with_(wdt_ms=6000.5), None, "whole number"),
        # The RP2040 waits 8.3 s at most, whatever wdt_ms asks: timeout_s must leave room.
        (with_(board="pico_w", timeout_s=7.5, wdt_ms=20000), PicoW, "at most 8300"),
    ):
        e = raises(ConfigError, validate, cfg, board)
        assert str(e).startswith("wdt_ms: "), e
        assert say in str(e), e
    assert validate(with_(board="pico_w", timeout_s=7, wdt_ms=20000), PicoW)["wdt_ms"] == 20000


def test_a_device_name_is_a_known_key_the_board_carries_unread():
    # Issue 19: `kpnthings new-device --name` writes "name" into the config; the board has no
    # use for it, but must not report it as a typo at every boot.
    cfg = with_(name="kitchen sensor")
    assert unknown_keys(cfg) == []
    assert validate(cfg)["name"] == "kitchen sensor"


OLD = "1C8F9D4F-6B3E-4D2F-8A7B-3E4F5A6B7C8D"
OLD_SECRET = "Yw72kQm3NpR8sTz1VbX5cLd9Hf4Gj6Ae0Ku"


def test_previous_identities_are_checked_and_never_shown():
    # Issue 19: the identities this board had before, whose queued readings still go out
    # under them (kpnthings.wiring); a copy, lowercased, as the host's check makes it.
    raw = with_(previous_identities=[{"dvnuuid": OLD, "secret": OLD_SECRET}])
    cfg = validate(raw)
    assert cfg["previous_identities"] == [{"dvnuuid": OLD.lower(), "secret": OLD_SECRET}]
    assert raw["previous_identities"][0]["dvnuuid"] == OLD  # what was read stays as written
    assert "previous_identities" not in validate(GOOD)  # no default
    assert unknown_keys(raw) == []
    for bad in ([], {}, "x", [OLD], [None]):
        msg = error(with_(previous_identities=bad))
        assert msg.startswith("previous_identities: must be a list of"), (bad, msg)
    cases = [
        ({"secret": OLD_SECRET}, "dvnuuid must be a UUID"),
        ({"dvnuuid": "x", "secret": OLD_SECRET}, "dvnuuid must be a UUID"),
        ({"dvnuuid": OLD}, "secret must be a string"),
        ({"dvnuuid": OLD, "secret": OLD_SECRET[:12]}, "got 12 characters"),
        ({"dvnuuid": OLD, "secret": OLD_SECRET + "!"}, "character 36 is not"),
    ]
    for entry, what in cases:
        old = {"dvnuuid": OLD, "secret": OLD_SECRET}
        msg = error(with_(previous_identities=[old, entry]))
        assert msg.startswith("previous_identities[1]: ") and what in msg, msg
        assert OLD_SECRET not in msg and OLD_SECRET[:12] not in msg, msg
    # A secret pasted where it does not belong is scrubbed, an earlier identity's as well.
    msg = scrub("a %s b %s" % (SECRET, OLD_SECRET), cfg)
    assert msg == "a *** b ***", msg


def test_health_every_is_a_whole_number_of_cycles_with_a_default():
    assert validate(GOOD)["health_every"] == 60
    assert validate(with_(health_every=0))["health_every"] == 0
    assert validate(with_(health_every=None))["health_every"] is None  # off, as 0
    assert validate(with_(health_every=1))["health_every"] == 1
    for bad in (-1, 1.5, "60", True, 1 << 21):
        msg = error(with_(health_every=bad))
        assert msg == "health_every: must be a whole number from 0 to 1048576", (bad, msg)
    assert unknown_keys(with_(health_every=5)) == []
