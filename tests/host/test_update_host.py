"""The emulator's update host (emulator_updates) and the ways a user drives it: the API, `kpnthings
update` (each device's version, an offer to one device or to all) and the dashboard's panel."""

import json
import urllib.error
import urllib.request

import pytest
from _cli_support import run_cli
from _dashboard_support import _shown
from _emulator_support import OTHER_UUID, SECRET, UUID

from kpnthings_tools import release_keys
from kpnthings_tools.emulator import Emulator


def _release(folder, version, key):
    d = folder / version
    d.mkdir(parents=True)
    (d / "kpnthings").mkdir()
    (d / "kpnthings" / "app.mpy").write_bytes(b"M\x06code")
    raw = b'{"board":"esp32","files":[],"version":"%s"}\n' % version.encode()
    (d / "manifest.json").write_bytes(raw)
    (d / "manifest.sig").write_bytes(release_keys.sign(key, raw))


@pytest.fixture
def host(tmp_path):
    key = release_keys.new_private_key()
    releases = tmp_path / "releases"
    for v in ("1.0.0", "1.10.0", "1.2.0"):
        _release(releases, v, key)
    (releases / "2.0.0").mkdir()  # not signed: never offered
    emu = Emulator(tmp_path / "e.db", {UUID: SECRET, OTHER_UUID: SECRET[::-1]}, releases=releases)
    srv = emu.serve("127.0.0.1", 0)
    yield srv, emu
    srv.shutdown()


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _post(url, value, headers=None):
    req = urllib.request.Request(
        url, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    return _get(req)


def test_offers_go_to_the_devices_named_and_versions_are_noted(host):
    srv, emu = host
    assert emu.updates.releases() == ["1.0.0", "1.2.0", "1.10.0"]  # by number, signed only
    assert _get(srv.url + "/updates/%s?v=1.0.0" % UUID)[0] == 204
    status, _ = _post(srv.url + "/api/updates", {"version": "1.2.0", "devices": [UUID]})
    assert status == 200
    status, body = _get(srv.url + "/updates/%s?v=1.0.0" % UUID)
    assert status == 200
    assert json.loads(body) == {"version": "1.2.0", "url": srv.url + "/releases/1.2.0"}
    assert _get(srv.url + "/updates/%s?v=1.0.0" % OTHER_UUID)[0] == 204
    info = json.loads(_get(srv.url + "/api/devices/" + UUID)[1])
    assert (info["version"], info["update_offered"]) == ("1.0.0", "1.2.0")
    assert _post(srv.url + "/api/updates", {"version": "1.10.0", "devices": "all"})[0] == 200
    assert json.loads(_get(srv.url + "/updates/%s" % OTHER_UUID)[1])["version"] == "1.10.0"
    assert json.loads(_get(srv.url + "/updates/%s" % UUID)[1])["version"] == "1.10.0"
    assert _post(srv.url + "/api/updates", {"version": None, "devices": "all"})[0] == 200
    assert _get(srv.url + "/updates/%s" % UUID)[0] == 204


def test_release_files_are_served_and_nothing_else(host):
    srv, _emu = host
    status, body = _get(srv.url + "/releases/1.2.0/kpnthings/app.mpy")
    assert (status, body) == (200, b"M\x06code")
    for bad in ("/releases/1.2.0/../../e.db", "/releases/9.9.9/manifest.json", "/releases/"):
        assert _get(srv.url + bad)[0] == 404, bad


def test_unsigned_or_missing_releases_and_cross_site_offers_are_refused(host):
    srv, _emu = host
    status, body = _post(srv.url + "/api/updates", {"version": "2.0.0", "devices": "all"})
    assert status == 400 and b"no signed release 2.0.0" in body
    status, body = _post(srv.url + "/api/updates", {"version": "1.2.0", "devices": 7})
    assert status == 400 and b"devices" in body
    status, _ = _post(
        srv.url + "/api/updates",
        {"version": "1.2.0", "devices": "all"},
        {"Origin": "https://evil.example"},
    )
    assert status == 403


def test_cli_lists_versions_and_offers_to_one_device_or_all(host, capsys):
    srv, emu = host
    _get(srv.url + "/updates/%s?v=1.0.0" % UUID)
    code, out, err = run_cli(capsys, "update", "--url", srv.url, "--offer", "1.2.0", UUID)
    assert code == 0, err
    assert emu.updates.offers == {UUID: "1.2.0"}
    code, out, err = run_cli(capsys, "update", "--url", srv.url)
    assert code == 0, err
    assert "releases: 1.0.0, 1.2.0, 1.10.0" in out
    assert "%s  -                    runs 1.0.0, offered 1.2.0" % UUID in out
    assert "%s  -                    runs unknown, offered nothing" % OTHER_UUID in out
    code, out, err = run_cli(capsys, "update", "--url", srv.url, "--offer", "1.10.0")
    assert code == 0 and "to all devices" in out
    assert emu.updates.offers == {"all": "1.10.0"}
    code, out, err = run_cli(capsys, "update", "--url", srv.url, "--offer", "3.0.0")
    assert code == 2 and "no signed release 3.0.0" in err


def test_dashboard_shows_versions_and_offers_an_update(host, browser):
    srv, emu = host
    _get(srv.url + "/updates/%s?v=1.0.0" % UUID)
    page = browser.new_page()
    page.goto(srv.url + "/#" + UUID)
    card = _shown(page, '.device[data-dvnuuid="%s"] .version' % UUID)
    assert card.inner_text() == "runs 1.0.0"
    page.wait_for_function("() => document.querySelectorAll('#up-version option').length === 3")
    options = page.eval_on_selector_all("#up-version option", "os => os.map(o => o.value)")
    assert options == ["1.10.0", "1.2.0", "1.0.0"]  # newest first, signed only
    page.select_option("#up-version", "1.2.0")
    page.click("#up-one")
    _shown(page, "#up-result.ok-text")
    assert emu.updates.offers == {UUID: "1.2.0"}
    page.click("#up-all")
    page.wait_for_function(
        "() => document.querySelector('#up-result').textContent.includes('every')"
    )
    assert emu.updates.offers == {"all": "1.2.0"}
    selector = '.device[data-dvnuuid="%s"] .version' % OTHER_UUID
    page.wait_for_function(
        "s => document.querySelector(s).textContent.includes('offered 1.2.0')", arg=selector
    )
