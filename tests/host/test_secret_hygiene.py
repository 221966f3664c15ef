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
"""

import base64
import json
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest
import trustme

from kpnthings import auth, client, config, mqtt, mqtt_config, mqtt_transport
from kpnthings_tools import cli, config_check, demo, deploy, emulator, provision

UUID = "9d2f6a1e-3b4c-4d5e-8f60-718293a4b5c6"
SECRET = "SeCrEtZq9Xw7Vb5Nm3Lk1Jh8Gf6Ds4Ap2Oi0Uy"
OTHER_SECRET = "OtHeRsEcReT4Kp8Wq2Zx6Cv0Bn3Ml7Jh5Gf1Ds"
WIFI_PW = "WiFiPw-zebra-4471-quokka"
MQTT_PW = "MqttPw-narwhal-8823-axolotl"
WATCHED = (SECRET, OTHER_SECRET, WIFI_PW, MQTT_PW)
TIMEOUT_S = 90
WIFI_BOARD = (
    "from boards.unix import PINS, OUTPUT_PINS, ACTUATORS, read_sensors\n"
    "HAS_WIFI = True\nCLOCK_TRUSTED = False\n"
)


def leaks(text, extra=()):
    """Every watched value (or half of one) and every extra value found in text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = [x for x in extra if x in text]
    for s in WATCHED:
        half = len(s) // 2
        for piece in (s, s[:half], s[half:]):
            if piece in text:
                found.append(piece)
    return found


def assert_clean(label, *texts, extra=()):
    for text in texts:
        bad = leaks(text, extra)
        assert not bad, "%s leaks %r in:\n%s" % (label, bad, text)


# --- firmware on the unix port -------------------------------------------------------------


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


# --- the CLI ---------------------------------------------------------------------------------


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def emu(tmp_path):
    logs = []
    e = emulator.Emulator(tmp_path / "emu.sqlite3", {UUID: SECRET}, log=logs.append)
    server = e.serve("127.0.0.1", 0)
    try:
        yield {"emu": e, "url": server.url, "logs": logs}
    finally:
        server.shutdown()


def _config(tmp_path, name="config.json", **changes):
    cfg = {"dvnuuid": UUID, "secret": SECRET, "board": "unix", "wifi_password": WIFI_PW}
    cfg.update(changes)
    path = tmp_path / name
    provision.write_config(path, cfg, force=True)
    return path


def test_token_prints_only_the_token(capsys, tmp_path):
    body = tmp_path / "body.json"
    body.write_bytes(b'[{"bn":"urn:dev:DVNUUID:%s:","n":"x","v":1}]' % UUID.encode())
    want = auth.message_token(body.read_bytes(), SECRET) + "\n"
    assert run_cli(capsys, "token", "--secret", SECRET, str(body)) == (0, want, "")
    cfg = _config(tmp_path)
    assert run_cli(capsys, "token", "--config", str(cfg), str(body)) == (0, want, "")
    # A secret KPN would refuse: a warning that says why, never what.
    code, out, err = run_cli(capsys, "token", "--secret", SECRET + "!", str(body))
    assert code == 0 and "warning" in err
    assert_clean("token with a bad secret", out, err)
    code, out, err = run_cli(capsys, "token", "--secret", SECRET, str(tmp_path / "absent"))
    assert code == 2
    assert_clean("token with a missing file", out, err)


def test_send_output_is_clean_for_every_outcome(capsys, tmp_path, emu):
    emu["emu"].queue_downlink(UUID, '[{"n":"led","vb":true}]')
    cfg = _config(tmp_path, url=emu["url"])
    code, out, err = run_cli(capsys, "send", "--config", str(cfg), "temperature=21.5")
    assert code == 0 and "accepted" in out and ':led"' in out, out + err
    assert_clean("send accepted", out, err)
    wrong = _config(tmp_path, "wrong.json", url=emu["url"], secret=OTHER_SECRET)
    code, out, err = run_cli(capsys, "send", "--config", str(wrong), "temperature=21.5")
    assert code == 1 and "unauthorized" in out
    assert_clean("send 401", out, err)
    https = _config(tmp_path, "https.json", url=emu["url"].replace("http:", "https:"))
    code, out, err = run_cli(capsys, "send", "--config", str(https), "x=1")
    assert code == 2 and "ca_file" in err
    assert_clean("send without a CA", out, err)
    insecure = _config(tmp_path, "insecure.json", url="https://127.0.0.1:1", tls_insecure=True)
    code, out, err = run_cli(capsys, "send", "--config", str(insecure), "--timeout", "1", "x=1")
    assert code == 1 and "retry" in out and "warning" in err
    assert_clean("send unreachable", out, err)
    bad = _config(tmp_path, "bad.json", secret=SECRET[:-1] + "!")
    code, out, err = run_cli(capsys, "send", "--config", str(bad), "x=1")
    assert code == 2 and "secret" in err
    assert_clean("send with a bad secret", out, err)
    assert_clean("emulator log", "\n".join(emu["logs"]))


def test_new_device_prints_the_new_credential_only(capsys, tmp_path):
    path = tmp_path / "dev.json"
    code, out, err = run_cli(
        capsys,
        "new-device",
        "--config-out",
        str(path),
        "--wifi-ssid",
        "bench",
        "--wifi-password",
        WIFI_PW,
    )
    assert code == 0 and err == ""
    written = json.loads(path.read_text())
    # Its job is to show the new secret, once; nothing else that is secret.
    assert "secret:  %s" % written["secret"] in out
    assert_clean("new-device", out)
    assert written["wifi_password"] == WIFI_PW
    code, out, err = run_cli(capsys, "new-device", "--wifi-password", "Qx7Wp3z")
    assert code == 2 and "wifi_password" in err
    assert_clean("new-device with a bad Wi-Fi password", out, err, extra=("Qx7Wp3z",))


def test_new_device_fleet_prints_no_secret(capsys, tmp_path):
    out_dir = tmp_path / "fleet"
    code, out, err = run_cli(
        capsys,
        "new-device",
        "--count",
        "3",
        "--out",
        str(out_dir),
        "--wifi-ssid",
        "bench",
        "--wifi-password",
        WIFI_PW,
    )
    assert code == 0, err
    configs = sorted(out_dir.glob("*.json"))
    secrets = [json.loads(p.read_text())["secret"] for p in configs]
    assert len(secrets) == 3
    csv_text = (out_dir / "kpnthings-devices.csv").read_text()
    assert all(s in csv_text for s in secrets)  # the files hold them ...
    assert_clean("new-device --count", out, err, extra=secrets)  # ... the output does not
    for p in configs:
        assert p.stat().st_mode & 0o077 == 0


def test_deploy_plan_and_run_print_no_secret(capsys, tmp_path):
    cfg = _config(tmp_path, board="esp32", wifi_ssid="bench", url="https://h.invalid")
    cfg_data = json.loads(cfg.read_text())
    cfg_data["tls_insecure"] = True
    provision.write_config(cfg, cfg_data, force=True)
    build_dir = tmp_path / "build"
    code, out, err = run_cli(
        capsys,
        "deploy",
        "--board",
        "esp32",
        "--config",
        str(cfg),
        "--dry-run",
        "--build-dir",
        str(build_dir),
    )
    assert code == 0 and ":config.json" in out, out + err
    assert_clean("deploy --dry-run", out, err)
    # The plan run through a stand-in for mpremote that echoes its arguments.
    plan = deploy.make_plan("esp32", str(cfg), port="/dev/null", build_dir=str(build_dir))
    tool = tmp_path / "fake-mpremote"
    tool.write_text('#!/bin/sh\necho mpremote "$@"\n')
    tool.chmod(0o755)
    sink = _Sink()
    assert deploy.execute(plan, out=sink, executable=str(tool)) == 0
    assert "config.json" in sink.text
    assert_clean("deploy run", sink.text)
    # A config the board would refuse: the error names the field only.
    bad = _config(tmp_path, "bad.json", board="esp32", wifi_ssid="bench", wifi_password="Qx7Wp3z")
    code, out, err = run_cli(
        capsys, "deploy", "--board", "esp32", "--config", str(bad), "--dry-run"
    )
    assert code == 2 and "wifi_password" in err
    assert_clean("deploy with a bad config", out, err, extra=("Qx7Wp3z",))


class _Sink:
    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)

    def flush(self):
        pass

    @property
    def text(self):
        return "".join(self.parts)


def test_mock_server_logs_and_api_never_show_a_secret(tmp_path):
    other_uuid = "0b3c4d5e-6f70-4182-9384-a5b6c7d8e9f0"
    other_cfg = tmp_path / "other.json"
    provision.write_config(other_cfg, {"dvnuuid": other_uuid, "secret": OTHER_SECRET})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kpnthings_tools.cli",
            "mock-server",
            "--port",
            "0",
            "--db",
            str(tmp_path / "emu.sqlite3"),
            "--max-body",
            "2048",
            "--device",
            "%s:%s" % (UUID, SECRET),
            "--device-config",
            str(other_cfg),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    try:
        head = [proc.stdout.readline() for _ in range(4)]  # URL, dashboard, 2 devices
        url = head[0].split()[-1]
        assert url.startswith("http://127.0.0.1:")
        bn = auth.base_name(UUID)

        def post(path, body, token=None, headers=None):
            req = urllib.request.Request(url + path, data=body, method="POST")
            req.add_header("Content-Type", "application/json")
            if token:
                req.add_header("Things-Message-Token", token)
            for k, v in (headers or {}).items():
                req.add_header(k, v)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    seen.append(r.read())
                    return r.status
            except urllib.error.HTTPError as e:
                seen.append(e.read())
                return e.code

        def get(path):
            with urllib.request.urlopen(url + path, timeout=10) as r:
                data = r.read()
                seen.append(data)
                return data

        good = ('[{"bn":"%s","n":"temperature","v":21.5}]' % bn).encode()
        own = ('[{"bn":"%s","n":"leak","vs":"%s"}]' % (bn, SECRET)).encode()
        # The same, with the secret's first letter JSON-escaped: a text scrub alone misses it.
        escaped = '[{"bn":"%s","n":"leak","vs":"\\u%04x%s"}]' % (bn, ord(SECRET[0]), SECRET[1:])
        escaped = escaped.encode()
        assert post("/ingestion/ip/senml/v1", good, auth.message_token(good, SECRET)) == 200
        assert post("/ingestion/ip/senml/v1", own, auth.message_token(own, SECRET)) == 200
        assert post("/ingestion/ip/senml/v1", escaped, auth.message_token(escaped, SECRET)) == 200
        assert post("/ingestion/ip/senml/v1", good, "0" * 64) == 401
        assert post("/ingestion/ip/senml/v1", good, SECRET) == 401  # the secret as the token
        assert post("/ingestion/ip/senml/v1", good) == 401
        assert post("/ingestion/ip/senml/v1", b"not json " + SECRET.encode()) == 400
        assert post("/ingestion/ip/senml/v1", b"[" + SECRET.encode() * 60 + b"]") == 413
        assert post("/ingestion/ip/senml/v1", b"\xff" + SECRET.encode()) == 400
        down = ('[{"n":"led","vs":"%s"}]' % SECRET).encode()
        assert post("/api/devices/%s/downlinks" % UUID, down) == 201
        down = ('[{"n":"led","vs":"\\u%04x%s"}]' % (ord(SECRET[0]), SECRET[1:])).encode()
        assert post("/api/devices/%s/downlinks" % UUID, down) == 201
        for path in (
            "/api/devices",
            "/api/devices/%s" % UUID,
            "/api/devices/%s" % other_uuid,
            "/api/devices/%s/messages" % UUID,
            "/api/devices/%s/downlinks" % UUID,
            "/api/messages",
            "/",
            "/static/app.js",
            "/static/app.css",
        ):
            get(path)
        listing = json.loads(get("/api/messages"))
        assert len(listing) == 9
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        out = "".join(head) + out
    assert out.count("registered") == 2 and "POST /ingestion/ip/senml/v1 401" in err, err
    assert_clean("mock-server stdout/stderr", out, err)
    for data in seen:
        assert_clean("mock-server answer", data)
        try:  # JSON answers once more with every string unescaped
            flat = json.dumps(json.loads(data), ensure_ascii=False)
        except ValueError:
            continue
        assert_clean("mock-server answer, unescaped", flat)
        for item in json.loads(data) if isinstance(json.loads(data), list) else ():
            for key in ("body", "response_body"):
                if isinstance(item, dict) and isinstance(item.get(key), str):
                    try:
                        inner = json.dumps(json.loads(item[key]), ensure_ascii=False)
                    except ValueError:
                        continue
                    assert_clean("mock-server listing %s, unescaped" % key, inner)
    # Raw bodies that are not UTF-8 are listed base64-encoded as well: no secret inside either.
    for message in listing:
        raw = message.get("body_base64")
        if raw is not None:
            assert_clean("body_base64", base64.b64decode(raw))


def test_mock_server_bad_device_option_does_not_echo_it(capsys):
    code, out, err = run_cli(capsys, "mock-server", "--device", "%s:%s!" % (UUID, SECRET))
    assert code == 2 and "--device #1" in err
    assert_clean("mock-server --device", out, err)
    code, out, err = run_cli(capsys, "mock-server", "--device", "%s%s" % (SECRET, UUID))
    assert code == 2
    assert_clean("mock-server --device", out, err)


# --- reprs and exception messages ------------------------------------------------------------


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
