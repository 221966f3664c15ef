"""Secret hygiene of the host tools (test_secret_hygiene.py says what is swept): the CLI's token,
send (accepted, 401, no CA, unreachable), new-device (single: only the credential itself; fleet:
nothing, the files hold them), deploy --dry-run and a deploy run through a stand-in tool; and
mock-server's stdout, stderr, JSON API and dashboard files, also when a device sends its own
secret.
"""

import base64
import json
import urllib.error
import urllib.request

import pytest
from _cli_support import run_cli
from _http_servers import start_mock_server
from _secret_sweep import OTHER_SECRET, SECRET, UUID, WIFI_PW, assert_clean

from kpnthings import auth
from kpnthings_tools import deploy, emulator, provision


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
    proc = start_mock_server(
        tmp_path,
        "--max-body",
        "2048",
        "--device",
        "%s:%s" % (UUID, SECRET),
        "--device-config",
        str(other_cfg),
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
