"""The `kpnthings` CLI: new-device, token, send, and mock-server as a real subprocess."""

import io
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from kpnthings import auth, senml
from kpnthings_tools import cli, config_check, provision
from kpnthings_tools.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
SECRET_RE = re.compile(r"^[0-9a-zA-Z]{30,100}$")
URL_LINE = re.compile(r"^KPN Things emulator listening on (http://127\.0\.0\.1:(\d+))$")
TOKEN_VECTORS = json.loads((DATA / "token.json").read_text())["vectors"]
UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fields(out):
    """'key: value' lines -> dict."""
    result = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        result[key.strip()] = value.strip()
    return result


# -- new-device ------------------------------------------------------------------------------


def test_new_device_prints_a_v4_uuid_and_a_kpn_secret(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = set()
    for _ in range(3):
        code, out, err = run_cli(capsys, "new-device")
        assert code == 0 and err == ""
        got = fields(out)
        parsed = uuid.UUID(got["dvnuuid"])
        assert parsed.version == 4 and str(parsed) == got["dvnuuid"]  # canonical, lowercase
        assert SECRET_RE.match(got["secret"])
        seen.add((got["dvnuuid"], got["secret"]))
    assert len(seen) == 3
    assert list(tmp_path.iterdir()) == []  # nothing written without --config-out


def test_new_device_json_and_name(capsys):
    code, out, _ = run_cli(capsys, "new-device", "--json", "--name", "kitchen")
    got = json.loads(out)
    assert code == 0 and got["name"] == "kitchen"
    assert uuid.UUID(got["dvnuuid"]).version == 4 and SECRET_RE.match(got["secret"])


def test_new_device_keeps_the_name_in_the_config(capsys, tmp_path):
    # Issue 19: --name used to be printed and then lost.
    path = tmp_path / "kitchen.json"
    code, out, err = run_cli(
        capsys, "new-device", "--name", "Kitchen sensor", "--config-out", str(path)
    )
    assert code == 0, err
    cfg = json.loads(path.read_text())
    assert cfg["name"] == "Kitchen sensor" and fields(out)["name"] == "Kitchen sensor"
    checked, unknown = config_check.check_file(path)
    assert unknown == [] and checked["name"] == "Kitchen sensor"
    # A name the dashboard could not show on one line is refused before anything is written.
    code, _, err = run_cli(
        capsys, "new-device", "--name", "two\nlines", "--config-out", str(tmp_path / "b.json")
    )
    assert code == 2 and "name: must be" in err and not (tmp_path / "b.json").exists()


def test_new_device_writes_a_private_config(capsys, tmp_path):
    path = tmp_path / "config.json"
    code, out, _ = run_cli(
        capsys,
        "new-device",
        "--config-out",
        str(path),
        "--url",
        "http://127.0.0.1:8080",
        "--cycles",
        "3",
    )
    assert code == 0
    printed = fields(out)
    config = json.loads(path.read_text())
    assert (config["dvnuuid"], config["secret"]) == (printed["dvnuuid"], printed["secret"])
    assert config["url"] == "http://127.0.0.1:8080" and config["board"] == "unix"
    assert config["cycles"] == 3 and isinstance(config["interval_s"], int)
    assert "ca_file" not in config and "tls_insecure" not in config
    assert path.stat().st_mode & 0o777 == 0o600
    # The firmware's own validator accepts it.
    from kpnthings import config as device_config

    assert device_config.validate(config)["dvnuuid"] == config["dvnuuid"]
    assert device_config.unknown_keys(config) in ([], set(), ())


def test_new_device_https_config_names_a_ca_or_opts_out(capsys, tmp_path):
    verified, insecure = tmp_path / "a.json", tmp_path / "b.json"
    assert run_cli(capsys, "new-device", "--config-out", str(verified))[0] == 0
    assert run_cli(capsys, "new-device", "--config-out", str(insecure), "--tls-insecure")[0] == 0
    a, b = json.loads(verified.read_text()), json.loads(insecure.read_text())
    assert a["url"] == "https://prod.dm.kpnthings.com" and a["ca_file"] == "ca.der"
    assert "tls_insecure" not in a
    assert b["tls_insecure"] is True and "ca_file" not in b


def test_new_device_never_overwrites_without_force(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text("keep me")
    code, out, err = run_cli(capsys, "new-device", "--config-out", str(path))
    assert code == 2 and "--force" in err and out == ""
    assert path.read_text() == "keep me"
    assert run_cli(capsys, "new-device", "--config-out", str(path), "--force")[0] == 0
    assert SECRET_RE.match(json.loads(path.read_text())["secret"])


def test_new_device_previous_keeps_the_old_identity_for_the_readings_it_queued(capsys, tmp_path):
    # Issue 19: a board re-provisioned over its own config keeps the old identity (and those
    # it kept) in previous_identities, read before the file is replaced; no old secret printed.
    path = tmp_path / "device.json"
    base = ("new-device", "--board", "unix", "--url", "http://127.0.0.1:1")
    assert run_cli(capsys, *base, "--config-out", str(path))[0] == 0
    first = json.loads(path.read_text())
    again = base + ("--config-out", str(path), "--force", "--previous", str(path))
    code, out, err = run_cli(capsys, *again)
    assert code == 0, err
    second = json.loads(path.read_text())
    assert second["dvnuuid"] != first["dvnuuid"] and fields(out)["secret"] == second["secret"]
    assert first["secret"] not in out + err
    keep = {k: first[k] for k in ("dvnuuid", "secret")}
    assert second["previous_identities"] == [keep]
    assert run_cli(capsys, *again)[0] == 0
    third = json.loads(path.read_text())
    assert [p["dvnuuid"] for p in third["previous_identities"]] == [
        second["dvnuuid"],
        first["dvnuuid"],
    ]
    assert run_cli(capsys, "check-config", str(path))[:2] == (0, "ok\n")
    # At most config_check's limit: the oldest go.
    for _ in range(4):
        assert run_cli(capsys, *again)[0] == 0
    olds = json.loads(path.read_text())["previous_identities"]
    assert len(olds) == 4 and first["dvnuuid"] not in [p["dvnuuid"] for p in olds]
    # Errors name the file and the entry, never a secret.
    code, out, err = run_cli(capsys, *base, "--previous", str(tmp_path / "none.json"))
    assert code == 2 and "--previous: cannot read" in err and "none.json" in err
    broken = dict(third, previous_identities=[dict(keep, secret=keep["secret"][:10])])
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    code, out, err = run_cli(capsys, *base, "--previous", str(tmp_path / "broken.json"))
    assert code == 2 and "broken.json: previous_identities[0]: secret must be 30-100" in err, err
    assert keep["secret"][:10] not in err and third["secret"] not in out + err
    code, out, err = run_cli(
        capsys, *base, "--count", "2", "--out", str(tmp_path / "f"), "--previous", str(path)
    )
    assert code == 2 and "not with --count" in err


def test_identity_repr_hides_the_secret():
    ident = provision.new_identity("x")
    assert ident.secret not in repr(ident) and ident.dvnuuid in repr(ident)


# -- token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", TOKEN_VECTORS, ids=lambda v: v["token"][:8])
def test_token_matches_known_vectors(capsys, tmp_path, vector):
    body_file = tmp_path / "body.json"
    body_file.write_bytes(vector["body"].encode())
    code, out, err = run_cli(capsys, "token", "--secret", vector["secret"], str(body_file))
    assert code == 0 and out == vector["token"] + "\n"
    assert vector["secret"] not in err


def test_token_reads_stdin_byte_for_byte(capsys, monkeypatch):
    vector = TOKEN_VECTORS[2]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(vector["body"].encode())))
    code, out, _ = run_cli(capsys, "token", "--secret", vector["secret"], "-")
    assert (code, out) == (0, vector["token"] + "\n")
    # One more byte (a trailing newline, as `echo` adds) is another token.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(vector["body"].encode() + b"\n")))
    assert run_cli(capsys, "token", "--secret", vector["secret"], "-")[1] != out


def test_token_takes_the_secret_from_a_config(capsys, tmp_path):
    config = tmp_path / "c.json"
    provision.write_config(config, {"dvnuuid": UUID, "secret": SECRET, "board": "unix"})
    body = tmp_path / "b"
    body.write_bytes(b"[]")
    code, out, err = run_cli(capsys, "token", "--config", str(config), str(body))
    assert (code, out) == (0, TOKEN_VECTORS[3]["token"] + "\n")
    assert SECRET not in err


def test_a_config_that_is_not_json_is_named_by_every_command(capsys, tmp_path):
    # Issue 19: the commands that read a config printed JSON's message alone, not the file.
    path = tmp_path / "kitchen.json"
    path.write_text('{"dvnuuid": "%s", "secret": "%s",\n "board": "unix",}' % (UUID, SECRET))
    body = tmp_path / "b"
    body.write_bytes(b"[]")
    for argv in (
        ["token", "--config", str(path), str(body)],
        ["send", "--config", str(path), "t=1"],
        ["mock-server", "--device-config", str(path)],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "", (argv, out)
        assert err.startswith("kpnthings: %s: not valid JSON: " % path), (argv, err)
        assert "line 2 column" in err and SECRET not in err, (argv, err)
    path.write_bytes(b'{"secret": "\xff"}')
    code, _, err = run_cli(capsys, "token", "--config", str(path), str(body))
    assert code == 2 and err.startswith("kpnthings: %s: not valid JSON: " % path), err


def test_token_short_secret_warns_without_echoing(capsys, tmp_path):
    body = tmp_path / "b"
    body.write_bytes(b"[]")
    code, out, err = run_cli(capsys, "token", "--secret", "MYKEY2", str(body))
    assert code == 0 and len(out.strip()) == 64
    assert "warning" in err and "MYKEY2" not in err


def test_token_missing_file_is_a_clear_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "token", "--secret", SECRET, str(tmp_path / "nope"))
    assert code == 2 and "cannot read" in err


# -- send ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value",
    [
        ("21", 21),
        ("-3", -3),
        ("21.5", 21.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("on", "on"),
        ("", ""),
        ("nan", "nan"),
        ("inf", "inf"),
        ("0x10", "0x10"),
    ],
)
def test_parse_value(text, value):
    got = cli.parse_value(text)
    assert got == value and type(got) is type(value)


def test_parse_measurements_refuses_a_bare_word():
    assert cli.parse_measurements(["a=1", "b=x=y"]) == [("a", 1), ("b", "x=y")]
    with pytest.raises(cli.CommandError):
        cli.parse_measurements(["temperature"])
    with pytest.raises(cli.CommandError):
        cli.parse_measurements(["=1"])


def test_build_pack_is_a_signed_kpn_pack():
    body = cli.build_pack(
        UUID, [("temperature", 21.5), ("door", True), ("mode", "eco")], 1700000000
    )
    assert body.startswith(b'[{"bn":"urn:dev:DVNUUID:%s:","bt":1700000000}' % UUID.encode())
    records = senml.decode(body)
    assert [(r["n"].rsplit(":", 1)[1], r.get("v", r.get("vb", r.get("vs")))) for r in records] == [
        ("temperature", 21.5),
        ("door", True),
        ("mode", "eco"),
    ]
    assert all(r["t"] == 1700000000 for r in records)


@pytest.fixture
def emulator(tmp_path):
    emu = Emulator(tmp_path / "emu.sqlite3", {UUID: SECRET}, log=lambda line: None)
    server = emu.serve()
    yield server
    server.shutdown()


def write_config(path, url, secret=SECRET):
    provision.write_config(
        path, {"dvnuuid": UUID, "secret": secret, "url": url, "board": "unix"}, force=True
    )
    return str(path)


def test_send_prints_status_outcome_and_downlink(capsys, tmp_path, emulator):
    pytest.importorskip("kpnthings.client")
    config = write_config(tmp_path / "c.json", emulator.url)
    emulator.emulator.queue_downlink(UUID, b'[{"n":"led","vb":true}]')
    code, out, err = run_cli(capsys, "send", "--config", config, "temperature=21.5", "ok=true")
    assert code == 0, err
    got = fields(out)
    assert (got["status"], got["outcome"]) == ("200", "accepted")
    downlink = json.loads(got["downlink"])
    assert [(r["n"], r["vb"]) for r in downlink] == [("urn:dev:DVNUUID:%s:led" % UUID, True)]
    stored = emulator.emulator.messages(UUID)[-1]
    assert stored["status"] == 200
    assert [r["n"].rsplit(":", 1)[1] for r in stored["records"]] == ["temperature", "ok"]
    # Nothing queued now: an empty downlink.
    code, out, _ = run_cli(capsys, "send", "--config", config, "temperature=21.6")
    assert code == 0 and json.loads(fields(out)["downlink"]) == []
    assert SECRET not in out + err


def test_send_reports_a_refused_token(capsys, tmp_path, emulator):
    pytest.importorskip("kpnthings.client")
    wrong = "W" * 40
    config = write_config(tmp_path / "c.json", emulator.url, secret=wrong)
    code, out, err = run_cli(capsys, "send", "--config", config, "temperature=1")
    got = fields(out)
    assert code == 1 and (got["status"], got["outcome"]) == ("401", "unauthorized")
    assert wrong not in out + err


def test_send_without_values_or_config_is_a_usage_error(capsys, tmp_path):
    config = write_config(tmp_path / "c.json", "http://127.0.0.1:9")
    code, _, err = run_cli(capsys, "send", "--config", config)
    assert code == 2 and "name=value" in err
    code, _, err = run_cli(capsys, "send", "--config", str(tmp_path / "missing.json"), "a=1")
    assert code == 2 and "cannot read" in err


# -- mock-server as a subprocess -------------------------------------------------------------


def start_mock_server(tmp_path, *extra, env=None):
    cmd = [
        sys.executable,
        "-m",
        "kpnthings_tools.cli",
        "mock-server",
        "--port",
        "0",
        "--db",
        str(tmp_path / "emu.sqlite3"),
        *extra,
    ]
    environ = {k: v for k, v in os.environ.items() if k != "KPNTHINGS_API_TOKEN"}
    environ.update(env or {})
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(tmp_path),
        env=environ,
    )


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def first_line_url(proc):
    assert proc.stdout is not None
    line = proc.stdout.readline().rstrip("\n")
    m = URL_LINE.match(line)
    assert m, line
    return m.group(1), int(m.group(2))


def post_uplink(url, body, secret=SECRET):
    req = urllib.request.Request(url + "/ingestion/ip/senml/v1", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Things-Message-Token", auth.message_token(body, secret))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def get_json(url, path):
    with urllib.request.urlopen(url + path, timeout=10) as resp:
        return json.loads(resp.read())


def test_mock_server_prints_its_url_first_and_keeps_messages(tmp_path):
    body = cli.build_pack(UUID, [("temperature", 20)], 1700000000)
    proc = start_mock_server(tmp_path, "--device", "%s:%s" % (UUID, SECRET))
    try:
        url, port = first_line_url(proc)
        assert port > 0
        assert post_uplink(url, body) == 200
        assert post_uplink(url, body, secret="X" * 32) == 401
    finally:
        code, out, err = stop(proc)
    assert code == 0
    assert SECRET not in out + err
    assert "401" in err  # one log line per request, on stderr

    # Same database, another run: the messages are still there.
    proc = start_mock_server(tmp_path, "--device", "%s:%s" % (UUID, SECRET))
    try:
        url, _ = first_line_url(proc)
        messages = get_json(url, "/api/devices/%s/messages" % UUID)
        assert [m["status"] for m in messages] == [200, 401]
        assert messages[0]["body"] == body.decode()
        devices = get_json(url, "/api/devices")
        assert devices[0]["last_outcome"] == "unauthorized"
    finally:
        code, out, err = stop(proc)
    assert code == 0 and SECRET not in out + err


def test_mock_server_takes_devices_from_config_files(tmp_path):
    config = write_config(tmp_path / "device.json", "http://127.0.0.1:1")
    proc = start_mock_server(tmp_path, "--device-config", config, "--quiet")
    try:
        url, _ = first_line_url(proc)
        body = cli.build_pack(UUID, [("x", 1)])
        assert post_uplink(url, body) == 200
    finally:
        code, out, err = stop(proc)
    assert code == 0 and err == "" and SECRET not in out


def test_mock_server_refuses_a_bad_secret_without_echoing_it(tmp_path):
    bad = "tooshort" + "$" * 3
    proc = start_mock_server(tmp_path, "--device", "%s:%s" % (UUID, bad))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "--device #1" in err and "secret" in err
    assert bad not in out + err


def _start_lines(proc, last="api token:", timeout=20):
    """The lines the mock-server prints at start, up to the one starting with `last`; the test
    fails (and the server is stopped) if it does not come within `timeout` seconds."""
    import queue
    import threading

    lines = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
            if line.startswith(last):
                return
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    got = []
    while not got or not got[-1].startswith(last):
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            proc.kill()
            pytest.fail("no %r line from the mock-server: %s" % (last, got))
        got.append(line)
    return got


def _api_status(url, path, token=None):
    req = urllib.request.Request(url + path)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_mock_server_on_the_lan_makes_an_api_token_and_warns(tmp_path):
    """--host 0.0.0.0, as for a real board on the bench: the API and the dashboard's data need
    a fresh token, printed at start; devices only need their Things-Message-Token."""
    body = cli.build_pack(UUID, [("temperature", 20)], 1700000000)
    proc = start_mock_server(tmp_path, "--host", "0.0.0.0", "--device", "%s:%s" % (UUID, SECRET))
    try:
        lines = _start_lines(proc)
        m = re.match(r"^KPN Things emulator listening on http://0\.0\.0\.0:(\d+)$", lines[0])
        assert m, lines
        port = int(m.group(1))
        got = fields("\n".join(lines[1:]))
        token = got["api token"].split()[0]
        assert len(token) >= 22
        assert got["dashboard"].endswith(":%d/#token=%s" % (port, token))
        assert got["board url"].startswith("http://") and ":%d" % port in got["board url"]
        here = "http://127.0.0.1:%d" % port
        assert post_uplink(here, body) == 200  # no API token for a device
        assert _api_status(here, "/api/devices") == 401
        assert _api_status(here, "/api/devices", "not-the-token") == 401
        assert _api_status(here, "/api/devices", token) == 200
        assert _api_status(here, "/api/devices/%s/messages" % UUID, token) == 200
    finally:
        code, out, err = stop(proc)
    assert code == 0 and SECRET not in out + err
    assert "warning: the emulator listens beyond this machine (--host 0.0.0.0)" in err
    assert "unencrypted" in err and "token" in err
    assert token not in err  # the request log never shows it


def test_mock_server_api_token_on_loopback_too(tmp_path):
    proc = start_mock_server(tmp_path, env={"KPNTHINGS_API_TOKEN": "bench-token-from-env"})
    try:
        url, _ = first_line_url(proc)
        lines = _start_lines(proc)
        assert lines[0] == "dashboard: %s/#token=bench-token-from-env" % url
        assert _api_status(url, "/api/devices") == 401
        assert _api_status(url, "/api/devices", "bench-token-from-env") == 200
    finally:
        code, _out, err = stop(proc)
    assert code == 0 and "warning" not in err  # 127.0.0.1 is not the LAN
    proc = start_mock_server(tmp_path, "--api-token", "short")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "--api-token must be 8 or more" in err


def test_installed_entry_point_runs():
    exe = Path(sys.executable).parent / "kpnthings"
    if not exe.exists():
        pytest.skip("kpnthings is not installed in this environment")
    result = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert result.returncode == 0
    for command in ("new-device", "token", "send", "mock-server"):
        assert command in result.stdout


def test_version_is_printed_and_matches_the_package(capsys):
    # Issue 19: `kpnthings --version` failed ("the following arguments are required").
    import kpnthings

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    out, err = capsys.readouterr()
    assert stopped.value.code == 0 and err == ""
    assert out == "kpnthings %s\n" % kpnthings.__version__
    # The firmware's version (printed at every boot) is the package's.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^version = "%s"$' % re.escape(kpnthings.__version__), pyproject, re.M)


# -- HTTPS -----------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    files = {
        "cert": tmp_path / "server.pem",
        "key": tmp_path / "server.key",
        "ca_pem": tmp_path / "ca.pem",
        "ca_der": tmp_path / "ca.der",
    }
    cert.private_key_and_cert_chain_pem.write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["ca_pem"]))
    files["ca_der"].write_bytes(ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()))
    return files


def test_mock_server_serves_https_and_send_verifies_it(capsys, tmp_path, tls_files):
    pytest.importorskip("kpnthings.client")
    proc = start_mock_server(
        tmp_path,
        "--device",
        "%s:%s" % (UUID, SECRET),
        "--tls-cert",
        str(tls_files["cert"]),
        "--tls-key",
        str(tls_files["key"]),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        m = re.match(r"^KPN Things emulator listening on (https://127\.0\.0\.1:\d+)$", line)
        assert m, line
        url = m.group(1)
        for ca in ("ca_der", "ca_pem"):
            config = tmp_path / ("%s.json" % ca)
            provision.write_config(
                config,
                {
                    "dvnuuid": UUID,
                    "secret": SECRET,
                    "url": url,
                    "board": "unix",
                    "ca_file": tls_files[ca].name,  # relative to the config's folder
                },
            )
            code, out, err = run_cli(capsys, "send", "--config", str(config), "t=1")
            assert code == 0, out + err
            assert fields(out)["outcome"] == "accepted"
        # ca_files are trusted too, beside ca_file (here an unrelated root), as on the board.
        import trustme

        other = tmp_path / "other.der"
        other.write_bytes(ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode()))
        config = tmp_path / "two.json"
        provision.write_config(
            config,
            {
                "dvnuuid": UUID,
                "secret": SECRET,
                "url": url,
                "board": "unix",
                "ca_file": "other.der",
                "ca_files": ["ca.pem"],
            },
        )
        code, out, err = run_cli(capsys, "send", "--config", str(config), "t=1")
        assert code == 0 and fields(out)["outcome"] == "accepted", out + err
        # https with neither ca_file nor tls_insecure is refused before anything is sent.
        bare = write_config(tmp_path / "bare.json", url)
        code, out, err = run_cli(capsys, "send", "--config", bare, "t=1")
        assert code == 2 and out == "" and err
        assert SECRET not in err
    finally:
        code, out, err = stop(proc)
    assert code == 0 and SECRET not in out + err


def test_new_device_refuses_a_config_the_board_would_refuse(capsys, tmp_path):
    path = tmp_path / "esp32.json"
    code, out, err = run_cli(capsys, "new-device", "--board", "esp32", "--config-out", str(path))
    assert code == 2 and "wifi_ssid" in err and out == ""
    assert not path.exists()
    code, _, err = run_cli(
        capsys,
        "new-device",
        "--board",
        "esp32",
        "--wifi-ssid",
        "bench",
        "--wifi-password",
        "hunter2hunter2",
        "--config-out",
        str(path),
    )
    assert code == 0, err
    assert json.loads(path.read_text())["wifi_ssid"] == "bench"
    assert "hunter2hunter2" not in err


def test_new_device_unwritable_path_is_a_clear_error(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "new-device", "--config-out", str(tmp_path / "no" / "such" / "c.json")
    )
    assert code == 2 and "cannot write" in err


def test_send_prints_byte_downlinks_as_base64url(capsys, tmp_path, emulator):
    pytest.importorskip("kpnthings.client")
    config = write_config(tmp_path / "c.json", emulator.url)
    emulator.emulator.queue_downlink(UUID, b'[{"n":"blob","vd":"aG9paG9pAA"}]')
    code, out, _ = run_cli(capsys, "send", "--config", config, "t=1")
    assert code == 0
    assert json.loads(fields(out)["downlink"])[0]["vd"] == "aG9paG9pAA"


# -- names on the emulator, and the downlink / messages verbs (issue 19) ------------------------

OTHER_UUID = "0b7d4a6e-93f2-4c1a-8d5e-2f6a7b8c9d0e"
OTHER_SECRET = "Zq8XbT4mN2vR7cK1pL9sW3yH6jF0dG5aE8uI"


def test_mock_server_shows_the_names_of_its_devices(tmp_path):
    path = tmp_path / "kitchen.json"
    provision.write_config(
        path, {"dvnuuid": UUID, "secret": SECRET, "board": "unix", "name": "kitchen"}
    )
    proc = start_mock_server(
        tmp_path,
        "--device-config",
        str(path),
        "--device",
        "%s:%s:garden shed" % (OTHER_UUID, OTHER_SECRET),
        "--quiet",
    )
    try:
        url, _ = first_line_url(proc)
        assert proc.stdout is not None
        head = [proc.stdout.readline().rstrip("\n") for _ in range(3)]
        names = {d["dvnuuid"]: d["name"] for d in get_json(url, "/api/devices")}
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert "device %s registered (kitchen)" % UUID in head
    assert "device %s registered (garden shed)" % OTHER_UUID in head
    assert names == {UUID: "kitchen", OTHER_UUID: "garden shed"}
    assert SECRET not in out + err and OTHER_SECRET not in out + err


@pytest.fixture
def bench(tmp_path):
    """An emulator with a named device, and what a device would send it."""
    emu = Emulator(tmp_path / "emu.sqlite3", [(UUID, SECRET, "kitchen")], log=lambda line: None)
    server = emu.serve()

    def uplink(answer=None):
        records = [("temperature", 20)]
        if answer is not None:
            records.append(("downlink", answer))
        assert post_uplink(server.url, cli.build_pack(UUID, records)) == 200

    server.uplink = uplink
    yield server
    server.shutdown()


def test_downlink_queues_a_command_by_device_name_and_lists_the_answers(capsys, bench):
    code, out, err = run_cli(
        capsys, "downlink", "kitchen", "led=true", "relay=true", 'msg="42"', "--url", bench.url
    )
    assert code == 0, err
    assert out == "queued downlink #1 for kitchen (%s)\n" % UUID
    body = json.loads(bench.emulator.downlinks(UUID)[0]["body"])
    assert [{k: v for k, v in r.items() if k != "bn"} for r in body] == [
        {"n": "led", "vb": True},
        {"n": "relay", "vb": True},
        {"n": "msg", "vs": "42"},
    ]
    bench.uplink()  # fetches it
    code, out, _ = run_cli(capsys, "downlink", UUID, "--url", bench.url)
    assert code == 0 and out.splitlines()[0] == (
        "downlink #1: waiting (delivered with message #1; 0 uplinks since)"
    )
    bench.uplink("led=applied; relay=refused: unknown actuator; msg=refused: unknown actuator")
    code, out, _ = run_cli(capsys, "downlink", "kitchen", "--url", bench.url)
    assert out.splitlines() == [
        "downlink #1: partly refused (answered in message #2)",
        "  led = true: applied",
        "  relay = true: refused: unknown actuator",
        "  msg = 42: refused: unknown actuator",
    ]


def test_downlink_wait_exits_by_what_the_device_answered(capsys, bench):
    import threading

    def device(answer):
        # Polls like a board: the uplink after the one that fetched the downlink answers it.
        for _ in range(100):
            if bench.emulator.device_info(UUID)["queued_downlinks"]:
                bench.uplink()
                bench.uplink(answer)
                return
            threading.Event().wait(0.05)

    for answer, status, first in (
        ("led=applied", 0, "downlink #1: applied (answered in message #2)"),
        ("led=refused: pin error: EIO", 1, "downlink #2: refused (answered in message #4)"),
    ):
        board = threading.Thread(target=device, args=(answer,))
        board.start()
        code, out, _ = run_cli(
            capsys, "downlink", "kitchen", "led=true", "--wait", "20", "--url", bench.url
        )
        board.join()
        assert code == status, out
        assert out.splitlines()[1] == first
    # Nobody answers: the wait ends, and says so.
    code, out, _ = run_cli(
        capsys, "downlink", "kitchen", "led=false", "--wait", "0.2", "--url", bench.url
    )
    assert code == 1 and out.splitlines()[1] == ("downlink #3: queued; no answer within 0.2 s")


def test_messages_lists_what_the_emulator_received(capsys, tmp_path, bench):
    bench.emulator.queue_downlink(UUID, b'[{"n":"led","vb":true}]')
    bench.uplink()
    bench.uplink("led=applied")
    assert post_uplink(bench.url, cli.build_pack(UUID, [("x", 1)]), secret="W" * 40) == 401
    config = write_config(tmp_path / "c.json", bench.url)
    code, out, err = run_cli(capsys, "messages", config, "--url", bench.url)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("#1 ") and lines[0].endswith(
        " 200 accepted: temperature=20  <- delivered downlink #1"
    )
    assert lines[1].endswith(' 200 accepted: temperature=20, downlink="led=applied"')
    assert lines[2].endswith(
        " 401 unauthorized: Things-Message-Token does not match body and secret"
    )
    code, out, _ = run_cli(
        capsys, "messages", "kitchen", "--since", "2", "--json", "--url", bench.url
    )
    assert [m["id"] for m in json.loads(out)] == [3]


def test_downlink_and_messages_name_what_went_wrong(capsys, bench):
    code, _, err = run_cli(capsys, "downlink", "cellar", "led=true", "--url", bench.url)
    assert code == 2 and "no device named 'cellar'" in err and "named: kitchen" in err
    code, _, err = run_cli(capsys, "downlink", OTHER_UUID, "led=true", "--url", bench.url)
    assert code == 2 and "not registered" in err
    code, _, err = run_cli(capsys, "downlink", "kitchen", "led", "--url", bench.url)
    assert code == 2 and "name=value" in err
    code, _, err = run_cli(capsys, "downlink", "kitchen", "--wait", "1", "--url", bench.url)
    assert code == 2 and "--wait needs a downlink" in err
    code, _, err = run_cli(capsys, "messages", "kitchen", "--url", "http://127.0.0.1:9")
    assert code == 2 and "no emulator at http://127.0.0.1:9" in err and "mock-server" in err
    assert bench.emulator.downlinks(UUID) == []


def test_downlink_and_messages_pass_the_emulators_api_token(capsys, tmp_path):
    # An emulator open to the LAN guards its API with a token (mock-server --host 0.0.0.0):
    # the bench verbs take it from --api-token or $KPNTHINGS_API_TOKEN.
    emu = Emulator(tmp_path / "emu.sqlite3", [(UUID, SECRET, "kitchen")], log=lambda line: None)
    server = emu.serve(api_token="bench-token-7")
    try:
        code, _, err = run_cli(capsys, "messages", UUID, "--url", server.url)
        assert code != 0 and "401" in err, err
        code, out, err = run_cli(
            capsys,
            "downlink",
            "kitchen",
            "led=true",
            "--url",
            server.url,
            "--api-token",
            "bench-token-7",
        )
        assert code == 0 and "queued downlink #1 for kitchen" in out, err
        os.environ["KPNTHINGS_API_TOKEN"] = "bench-token-7"
        try:
            code, out, err = run_cli(capsys, "messages", "kitchen", "--url", server.url)
        finally:
            del os.environ["KPNTHINGS_API_TOKEN"]
        assert code == 0, err
    finally:
        server.shutdown()
