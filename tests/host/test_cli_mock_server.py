"""`kpnthings mock-server` as a real subprocess: its URL first, the messages kept across runs,
devices from config files, and an API token when it listens beyond this machine."""

import re
import urllib.error
import urllib.request

import pytest
from _cli_support import (
    OTHER_SECRET,
    OTHER_UUID,
    SECRET,
    UUID,
    fields,
    get_json,
    post_uplink,
    write_config,
)
from _http_servers import first_line_url, start_mock_server, stop

from kpnthings_tools import cli, provision


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
