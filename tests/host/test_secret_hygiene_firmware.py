"""Secret hygiene of the firmware on the unix port (test_secret_hygiene.py says what is swept):
every run starts at once, to keep the suite fast. A normal run against the emulator, a 401 run
(the emulator holds another secret), a TLS failure, tls_insecure (the WARNING at every boot), an
MQTT broker refusing the password, and every kind of bad config, each of which must stop the boot
(exit 1) naming the field and not its value; also issue 5.1's boot checks (https without
ca_file or tls_insecure).
"""

import json
import socket
import ssl
import subprocess
import threading

import pytest
import trustme
from _secret_sweep import MQTT_PW, OTHER_SECRET, SECRET, UUID, WIFI_PW, assert_clean

from kpnthings_tools import demo, emulator

TIMEOUT_S = 90
WIFI_BOARD = (
    "from boards.unix import PINS, OUTPUT_PINS, ACTUATORS, read_sensors\n"
    "HAS_WIFI = True\nCLOCK_TRUSTED = False\n"
)


def _der(ca, path):
    path.write_bytes(ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()))
    return str(path)


class FakeBroker:
    """Accepts one MQTT connection at a time, keeps the CONNECT, answers CONNACK 4 (bad user
    name or password)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.connects = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(3)
                try:
                    self.connects.append(conn.recv(1024))
                    conn.sendall(b"\x20\x02\x00\x04")
                    conn.recv(16)
                except OSError:
                    pass

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def _scenarios(tmp, urls, pki, broker_port):
    """name -> (config dict or raw text, uses the Wi-Fi board)."""
    base = {"dvnuuid": UUID, "secret": SECRET, "board": "unix", "interval_s": 1, "cycles": 1}
    good = dict(base, url=urls["good"])
    # The Wi-Fi board's clock is never set (no ntptime on the unix port): undated_wait_s 0
    # sends its readings at once instead of after two minutes' wait for NTP.
    wifi = dict(good, board="wifiboard", wifi_ssid="bench", wifi_password=WIFI_PW, undated_wait_s=0)
    mqtt_cfg = dict(
        good,
        transport="mqtt",
        mqtt_host="127.0.0.1",
        mqtt_port=broker_port,
        mqtt_tls=False,
        mqtt_username="bench",
        mqtt_password=MQTT_PW,
        mqtt_uplink_topic="kpn/{dvnuuid}/up",
        timeout_s=2,
    )
    return {
        # Runs that must work (or fail at the network) without printing a secret.
        "normal": (dict(wifi, cycles=2), True),
        "unauthorized": (dict(good, url=urls["other"]), False),
        "tls_failure": (dict(good, url=urls["tls"], ca_file=pki["other_der"]), False),
        "tls_insecure_boot1": (dict(good, url=urls["tls"], tls_insecure=True), False),
        "tls_insecure_boot2": (dict(good, url=urls["tls"], tls_insecure=True), False),
        "tls_verified": (dict(good, url=urls["tls"], ca_file=pki["der"]), False),
        "mqtt_refused": (mqtt_cfg, False),
        # Configs that must stop the boot, naming the field.
        "https_no_ca": (dict(good, url=urls["tls"]), False),
        "secret_short": (dict(good, secret=SECRET[:20]), False),
        "secret_long": (dict(good, secret=SECRET * 3), False),
        "secret_bad_char": (dict(good, secret=SECRET[:-1] + "!"), False),
        "secret_not_string": (dict(good, secret=123456789), False),
        "secret_missing": ({k: v for k, v in good.items() if k != "secret"}, False),
        "dvnuuid_bad": (dict(good, dvnuuid="not-a-uuid-" + SECRET[:8]), False),
        "url_bad": (dict(good, url="ftp://example.invalid"), False),
        "ca_file_missing": (dict(good, url=urls["tls"], ca_file="missing.der"), False),
        "ca_file_pem": (dict(good, url=urls["tls"], ca_file=pki["pem"]), False),
        "wifi_password_short": (dict(wifi, wifi_password="Qx7Wp3z"), True),
        "wifi_password_long": (dict(wifi, wifi_password=WIFI_PW * 3), True),
        "mqtt_password_without_user": (dict(mqtt_cfg, mqtt_username=""), False),
        "mqtt_password_not_string": (dict(mqtt_cfg, mqtt_password=12345678), False),
        "interval_bad": (dict(wifi, interval_s=0), True),
        # The secret pasted into the wrong field: still never printed.
        "secret_as_board": (dict(good, board=SECRET), False),
        "secret_as_ca_file": (dict(good, url=urls["tls"], ca_file=SECRET), False),
        "secret_as_url": (dict(good, url="https://" + SECRET), False),
        # unterminated string right after the secret: every JSON parser refuses this
        "json_invalid": (json.dumps(wifi)[:-1] + ', "note": "' + SECRET, True),
    }


# scenario -> text the boot error must contain (the field); the value must not appear
BAD_CONFIGS = {
    "https_no_ca": "ca_file",
    "secret_short": "secret:",
    "secret_long": "secret:",
    "secret_bad_char": "secret:",
    "secret_not_string": "secret:",
    "secret_missing": "secret:",
    "dvnuuid_bad": "dvnuuid:",
    "url_bad": "url:",
    "ca_file_missing": "ca_file:",
    "ca_file_pem": "ca_file",
    "wifi_password_short": "wifi_password:",
    "wifi_password_long": "wifi_password:",
    "mqtt_password_without_user": "mqtt_password:",
    "mqtt_password_not_string": "mqtt_password:",
    "interval_bad": "interval_s:",
    "secret_as_board": "board:",
    "secret_as_ca_file": "ca_file:",
    "secret_as_url": "ca_file",
    "json_invalid": "not valid JSON",
}
# What a bad value would look like if echoed (beyond the watched values).
BAD_VALUES = {
    "wifi_password_short": ("Qx7Wp3z",),
    "dvnuuid_bad": ("not-a-uuid",),
    "secret_not_string": ("123456789",),
    "mqtt_password_not_string": ("12345678",),
}


@pytest.fixture(scope="module")
def firmware_runs(tmp_path_factory):
    """Start every firmware run at once; {name: (returncode, stdout, stderr)}."""
    tmp = tmp_path_factory.mktemp("fw")
    ca, other = trustme.CA(), trustme.CA()
    pki = {
        "der": _der(ca, tmp / "ca.der"),
        "other_der": _der(other, tmp / "other.der"),
        "pem": str(tmp / "ca.pem"),
    }
    ca.cert_pem.write_to_path(pki["pem"])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    logs = []
    emus = {
        "good": emulator.Emulator(":memory:", {UUID: SECRET}, log=logs.append),
        "other": emulator.Emulator(":memory:", {UUID: OTHER_SECRET}, log=logs.append),
        "tls": emulator.Emulator(":memory:", {UUID: SECRET}, log=logs.append),
    }
    servers = {k: e.serve("127.0.0.1", 0) for k, e in emus.items() if k != "tls"}
    servers["tls"] = emus["tls"].serve("127.0.0.1", 0, ssl_context=server_ctx)
    urls = {k: s.url for k, s in servers.items()}
    emus["good"].queue_downlink(UUID, '[{"n":"led","vb":true}]')
    broker = FakeBroker()
    boards = tmp / "boards"
    boards.mkdir()
    (boards / "wifiboard.py").write_text(WIFI_BOARD)
    procs = {}
    try:
        for name, (cfg, wifi_board) in _scenarios(tmp, urls, pki, broker.port).items():
            folder = tmp / name
            folder.mkdir()
            path = folder / "config.json"
            path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
            env = demo.firmware_env(path, extra_path=[boards] if wifi_board else [])
            procs[name] = subprocess.Popen(
                [demo.micropython_binary(), str(demo.FIRMWARE)],
                cwd=str(folder),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        results = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=TIMEOUT_S)
            results[name] = (proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        broker.close()
        for s in servers.values():
            s.shutdown()
    results["_emulator_log"] = (0, "\n".join(logs), "")
    results["_broker_connects"] = broker.connects
    return results


def _run(runs, name):
    rc, out, err = runs[name]
    assert_clean("firmware run %r" % name, out, err)
    return rc, out, err


def test_normal_run_prints_no_secret_and_no_wifi_password(firmware_runs):
    rc, out, err = _run(firmware_runs, "normal")
    assert rc == 0, out + err
    assert out.count("-> 200 accepted") == 2, out
    assert "[wifi] connecting to 'bench'" in out
    assert "[kpn] downlink led = True applied" in out


def test_unauthorized_run_prints_no_secret(firmware_runs):
    rc, out, err = _run(firmware_runs, "unauthorized")
    assert rc == 0, out + err
    assert "-> 401 unauthorized" in out, out


def test_tls_failure_prints_no_secret(firmware_runs):
    rc, out, err = _run(firmware_runs, "tls_failure")
    assert rc == 0, out + err
    assert "-> no answer retry" in out and "TLS" in out, out


def test_verified_tls_run_works_and_prints_no_warning(firmware_runs):
    rc, out, err = _run(firmware_runs, "tls_verified")
    assert rc == 0, out + err
    assert "-> 200 accepted" in out, out
    assert "WARNING" not in out


def test_tls_insecure_warns_at_every_boot(firmware_runs):
    # Issue 5.1: the opt-out is loud, at every boot, before the first uplink.
    for name in ("tls_insecure_boot1", "tls_insecure_boot2"):
        rc, out, err = _run(firmware_runs, name)
        assert rc == 0, out + err
        lines = out.splitlines()
        warn = [i for i, line in enumerate(lines) if line.startswith("WARNING: tls_insecure")]
        first_uplink = [i for i, line in enumerate(lines) if "uplink 1:" in line]
        assert len(warn) == 1 and first_uplink and warn[0] < first_uplink[0], out
        assert "-> 200 accepted" in out  # unverified, but it talks


def test_mqtt_refused_password_is_never_printed(firmware_runs):
    rc, out, err = _run(firmware_runs, "mqtt_refused")
    assert rc == 0, out + err
    assert "-> unauthorized" in out and "CONNACK 4" in out, out
    # The password did go to the broker: the absence in the output is not for lack of use.
    assert any(MQTT_PW.encode() in c for c in firmware_runs["_broker_connects"])


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_stops_the_boot_naming_the_field_not_the_value(firmware_runs, name):
    rc, out, err = firmware_runs[name]
    assert_clean("boot with %s" % name, out, err, extra=BAD_VALUES.get(name, ()))
    assert rc != 0, out + err
    assert "config error" in out, out
    assert BAD_CONFIGS[name] in out, out
    assert "uplink" not in out


def test_https_without_ca_file_is_a_clear_boot_error(firmware_runs):
    # Issue 5.1 at firmware level: no CA and no opt-out stops the boot and says what to set.
    rc, out, _ = firmware_runs["https_no_ca"]
    assert rc == 1
    line = [x for x in out.splitlines() if x.startswith("config error")]
    assert len(line) == 1 and "'ca_file'" in line[0] and "'tls_insecure': true" in line[0], out


def test_emulator_log_of_the_firmware_runs_is_clean(firmware_runs):
    _, log, _ = firmware_runs["_emulator_log"]
    assert "ingestion" in log
    assert_clean("emulator log", log)
