"""Secret hygiene (issue 5.2): one sweep over every output path SECURITY.md names.

SECURITY.md: "The secret never appears in output: not in logs, exception messages, repr() of
the client or config, the emulator's listings or API, or the CLI's output (except new-device).
Config errors name the field, never its value." Here one distinctive device secret, Wi-Fi
password and MQTT password go through every path this test can drive, and every byte that comes
out is searched for them (whole, and each half, so a truncated echo is caught too):

- the firmware on the MicroPython unix port (all runs start at once, to keep the suite fast):
  a normal run against the emulator, a 401 run (the emulator holds another secret), a TLS
  failure, tls_insecure (the WARNING at every boot), an MQTT broker refusing the password, and
  every kind of bad config, each of which must stop the boot (exit 1) naming the field and not
  its value; also issue 5.1's boot checks (https without ca_file or tls_insecure);
- the CLI: token, send (accepted, 401, no CA, unreachable), new-device (single: only the
  credential itself; fleet: nothing, the files hold them), deploy --dry-run and a deploy run
  through a stand-in tool, mock-server's stdout/stderr including refused requests;
- the emulator's JSON API, dashboard files and log, also when a device sends its own secret;
- repr()/str() of Client, Result, MQTTClient, MQTTTransport, Identity, and the messages of
  ConfigError and the other exceptions a bad secret or password raises.

This file holds the reprs and messages; the firmware runs are in test_secret_hygiene_firmware.py,
the CLI, mock-server and emulator API in test_secret_hygiene_cli.py, the watched values and the
search in _secret_sweep.py.
"""

import pytest
from _secret_sweep import MQTT_PW, SECRET, UUID, WIFI_PW, assert_clean, leaks

from kpnthings import auth, client, config, mqtt, mqtt_config, mqtt_transport
from kpnthings_tools import config_check, emulator, provision


def _valid(**changes):
    cfg = {"dvnuuid": UUID, "secret": SECRET, "board": "unix", "url": "http://127.0.0.1:1"}
    cfg.update(changes)
    return cfg


def test_reprs_of_clients_results_and_identities(tmp_path):
    objs = [
        client.Client(UUID, SECRET, url="http://127.0.0.1:1"),
        client.Client(UUID, SECRET, url="https://h.invalid", insecure=True),
        provision.Identity(UUID, SECRET, "bench"),
    ]
    for outcome in (client.ACCEPTED, client.MALFORMED, client.UNAUTHORIZED, client.RETRY):
        objs.append(client.Result(200, outcome, [{"n": "led", "vb": True}], "HTTP 401"))
    mqtt_cfg = config.validate(
        _valid(
            transport="mqtt",
            mqtt_host="127.0.0.1",
            mqtt_tls=False,
            mqtt_password=MQTT_PW,
            mqtt_uplink_topic="kpn/{dvnuuid}/up",
            mqtt_token=True,
        )
    )
    transport = mqtt_transport.MQTTTransport(mqtt_cfg, connect=lambda *a: None)
    objs += [transport, transport.client]
    objs.append(mqtt.MQTTClient("127.0.0.1", 1883, UUID, "user", MQTT_PW))
    for obj in objs:
        assert_clean(type(obj).__name__, repr(obj), str(obj))
    assert "TLS unverified" in repr(objs[1])
    # A failed send's Result carries the transport's error text: clean too.
    r = objs[0].send(b"[]")
    assert r.outcome == client.RETRY and r.error
    assert_clean("Result of a refused connection", repr(r), r.error)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"secret": SECRET[:20]}, "secret:"),
        ({"secret": SECRET * 3}, "secret:"),
        ({"secret": SECRET[:-1] + "!"}, "secret:"),
        ({"secret": SECRET[:-1] + "\u00e9"}, "secret:"),
        ({"secret": [SECRET]}, "secret:"),
        ({"dvnuuid": SECRET}, "dvnuuid:"),
        ({"url": "https://" + SECRET}, "ca_file"),
        ({"wifi_password": "Qx7Wp3z"}, "wifi_password:"),
        ({"wifi_password": WIFI_PW * 3}, "wifi_password:"),
        ({"board": "esp32", "wifi_password": WIFI_PW}, "wifi_ssid:"),
        ({"transport": "mqtt", "mqtt_host": "h", "mqtt_password": MQTT_PW}, "mqtt_"),
        ({"transport": "mqtt", "mqtt_password": MQTT_PW, "mqtt_uplink_topic": "t"}, "mqtt_host"),
        ({"actuators": {"led": {"type": "digital", "pin": 2, "x": SECRET}}}, "actuators.led.x"),
        ({"sensors": [{"type": "nope"}]}, "sensors"),
        ({"timeout_s": SECRET}, "timeout_s:"),
    ],
)
def test_config_errors_name_the_field_never_a_secret(changes, field):
    raw = _valid(**dict({"wifi_password": WIFI_PW}, **changes))
    # The host's full check (deploy, check-config) names every one of them.
    with pytest.raises(config.ConfigError) as info:
        cfg = config_check.validate(raw)
        # Some checks happen when the transport is built, as the firmware does.
        from kpnthings import wiring

        wiring.make_transport(cfg)
    msg = str(info.value)
    assert field in msg, msg
    assert_clean("ConfigError", msg, repr(info.value), extra=("Qx7Wp3z",))
    # The board's short check trusts a few of them (an unknown actuator field); what it
    # refuses, it refuses as cleanly.
    try:
        config.validate(raw)
    except config.ConfigError as e:
        assert_clean("board ConfigError", str(e), repr(e), extra=("Qx7Wp3z",))


def test_other_exceptions_never_hold_a_secret(tmp_path):
    errors = []
    for bad in (SECRET[:20], SECRET + "!", SECRET[:-1] + " "):
        for fn in (
            lambda b=bad: client.Client(UUID, b, url="http://h.invalid"),
            lambda b=bad: auth.check_secret(b),
            lambda b=bad: provision.Identity(UUID, b),
            lambda b=bad: emulator.Emulator(":memory:", {UUID: b}, log=lambda line: None),
        ):
            try:
                fn()
            except ValueError as e:
                errors.append(e)
    for bad in (SECRET + "!", SECRET[:10]):
        try:
            mqtt_config.validate(_valid(transport="mqtt", mqtt_host="h", mqtt_password=bad))
        except ValueError as e:
            errors.append(e)
    bad_json = tmp_path / "c.json"
    bad_json.write_text('{"secret": "%s",}' % SECRET)
    for fn in (lambda: config.load_config(str(bad_json)), lambda: provision.load_config(bad_json)):
        try:
            fn()
        except ValueError as e:
            errors.append(e)
    assert len(errors) >= 14
    for e in errors:
        assert_clean(type(e).__name__, str(e), repr(e), extra=(SECRET[:20],))


def test_sweep_finds_a_planted_leak():
    # The checker itself: it must notice a secret, half of one, and an extra value.
    assert leaks("x" + SECRET + "y")
    assert leaks(SECRET[: len(SECRET) // 2])
    assert leaks("pw=" + WIFI_PW[len(WIFI_PW) // 2 :])
    assert leaks("Qx7Wp3z", extra=("Qx7Wp3z",))
    assert not leaks("config error: secret: must be 30-100 letters or digits")
