"""The emulator's bench dashboard at ``/``: how the page is served, and, in a real headless
Chromium, the duplicates and time sources it marks and the API token it takes from its address.
The page with the firmware running is test_dashboard_firmware.py.

Debian's ``chromium`` (``apt-get install chromium``) is driven by Playwright for Python with
``executable_path`` set; Playwright's own downloaded browsers are never used. The browser tests are
skipped, saying why, only when one of the two is missing (the ``browser`` fixture, conftest.py).

The tests without a browser check how the page is served: only the files in ``static/``, with a
policy that keeps scripts and data on the emulator's own origin, and no cross-site downlinks.
"""

import http.client
import json

from _dashboard_support import ARTIFACTS, WAIT_MS, _get, _shown, _uplink

from kpnthings import auth
from kpnthings_tools import emulator, provision


def test_page_and_its_files_are_served_with_a_same_origin_policy(server):
    status, headers, page = _get(server.url + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    text = page.decode("utf-8")
    for ref in (
        "/static/app.js",
        "/static/app.css",
        "/static/vendor/uPlot.iife.min.js",
        "/static/vendor/uPlot.min.css",
    ):
        assert ref in text, ref
        status, headers, body = _get(server.url + ref)
        assert status == 200 and body, ref
        kind = "text/javascript" if ref.endswith(".js") else "text/css"
        assert headers["Content-Type"].startswith(kind), (ref, headers["Content-Type"])
    # Nothing on the page is fetched from elsewhere: it works offline.
    assert "http://" not in text and "https://" not in text


def test_only_the_static_files_can_be_fetched(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        for path in (
            "/static/../emulator.py",
            "/static/%2e%2e/emulator.py",
            "/static/vendor/uPlot.LICENSE",
            "/static/",
            "/emulator.py",
            "/static//etc/passwd",
            "/index.html",
        ):
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 404, (path, resp.status)
            assert b"import" not in body and b"root:" not in body
    finally:
        conn.close()


def test_downlinks_from_another_site_are_refused(server):
    dvnuuid = server.devices[0][0]
    body = json.dumps([{"n": "led", "vb": True}])
    localhost = "localhost:%d" % server.port
    for origin, host, expected in (
        ("http://evil.example", None, 403),
        ("null", None, 403),
        ("http://evil.example:%d" % server.port, "evil.example:%d" % server.port, 403),  # rebinding
        (server.url, None, 201),  # the dashboard itself
        ("http://" + localhost, localhost, 201),  # the same, opened as localhost
        (None, None, 201),  # tools and scripts send no Origin
    ):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        headers = {"Content-Type": "application/json"}
        if origin is not None:
            headers["Origin"] = origin
        if host is not None:
            headers["Host"] = host
        conn.request("POST", "/api/devices/%s/downlinks" % dvnuuid, body, headers)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        assert resp.status == expected, (origin, resp.status)
    queue = server.emulator.downlinks(dvnuuid)
    assert len(queue) == 3


# -- the page in Chromium ------------------------------------------------------------------------


def test_dashboard_marks_a_message_that_holds_duplicates(server, browser):
    # Issue 18, item 3: a pack sent again after a lost answer holds records already stored.
    dvnuuid, secret = server.devices[0]
    body = ('[{"bn":"urn:dev:DVNUUID:%s:","bt":1760000000,"n":"t","v":1}]' % dvnuuid).encode()
    token = auth.message_token(body, secret)
    assert _uplink(server.url, body, token) == 200
    assert _uplink(server.url, body, token) == 200
    page = browser.new_page()
    page.goto(server.url + "/#" + dvnuuid)
    mark = _shown(page, '#log [data-duplicates="1"]')
    assert mark.inner_text() == "1 duplicate"
    assert len(page.query_selector_all("#log [data-duplicates]")) == 1


def test_dashboard_shows_how_the_times_were_obtained(server, browser):
    # Issue 18, item 5: a pack whose times are not all NTP's says how they were obtained
    # (timeQuality), a pack without times how many readings it holds (undatedReadings): the
    # log marks each such message, the device card the last one and the readings so sent.
    dvnuuid, secret = server.devices[0]
    head = '[{"bn":"urn:dev:DVNUUID:%s:",' % dvnuuid
    bodies = [
        head + '"n":"t","v":1},{"n":"t","v":2},{"n":"undatedReadings","v":2}]',
        head + '"bt":1800000000,"n":"t","v":3},{"n":"timeQuality","v":1}]',
        head + '"bt":1800000060,"n":"t","v":4},{"n":"timeQuality","v":2}]',
        head + '"bt":1800000120,"n":"t","v":5}]',
    ]
    for body in bodies:
        data = body.encode()
        assert _uplink(server.url, data, auth.message_token(data, secret)) == 200
    page = browser.new_page()
    page.goto(server.url + "/#" + dvnuuid)
    marks = {}
    for source in ("none", "ticks", "rtc"):
        marks[source] = _shown(page, '#log [data-time-source="%s"]' % source).inner_text()
    assert marks == {
        "none": "no times: arrival (2 undated)",
        "ticks": "times dated from ticks",
        "rtc": "times from the RTC",
    }, marks
    assert len(page.query_selector_all("#log [data-time-source]")) == 3  # NTP: none
    card = _shown(page, '.device[data-dvnuuid="%s"] .times' % dvnuuid)
    assert card.get_attribute("data-time-source") == "ntp"
    assert card.inner_text() == "times from NTP · 2 readings sent without a time"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-times.png"))


def test_dashboard_takes_the_api_token_from_its_address(browser):
    """An emulator with an API token (mock-server --host 0.0.0.0): the page shows nothing and
    says why without the token, and everything with /#token=..., which leaves the address bar
    at once; the downlink form sends the token too (issue 19, item 6)."""
    dvnuuid, secret = provision.new_dvnuuid(), provision.new_secret()
    emu = emulator.Emulator(":memory:", [(dvnuuid, secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0, api_token="bench-token-7")
    body = ('[{"bn":"%s","n":"temperature","u":"Cel","v":21.5}]' % auth.base_name(dvnuuid)).encode()
    try:
        assert _uplink(server.url, body, auth.message_token(body, secret)) == 200
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_selector('#conn[data-state="locked"]', timeout=WAIT_MS)
        assert "needs its token" in page.inner_text("#conn")
        assert page.query_selector(".device") is None

        page.goto(server.url + "/#token=bench-token-7")
        card = '.device[data-dvnuuid="%s"][data-outcome="accepted"]' % dvnuuid
        page.wait_for_selector(card, timeout=WAIT_MS)
        assert "token" not in page.url  # out of the address bar and the history
        page.fill("#dl-name", "led")
        page.fill("#dl-value", "true")
        page.click("#dl-submit")
        page.wait_for_function(
            "() => document.getElementById('dl-result').textContent"
            ".startsWith('Queued downlink #1')",
            timeout=WAIT_MS,
        )
        page.reload()  # the tab keeps the token
        page.wait_for_selector(card, timeout=WAIT_MS)

        other = browser.new_page()  # another tab has to be given it again
        other.goto(server.url + "/#token=wrong-token")
        other.wait_for_selector('#conn[data-state="locked"]', timeout=WAIT_MS)
        assert "not the emulator's" in other.inner_text("#conn")
        assert len(emu.downlinks(dvnuuid)) == 1
    finally:
        server.shutdown()
