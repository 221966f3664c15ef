"""The emulator's bench dashboard at ``/``, in a real headless Chromium, with the firmware running.

Debian's ``chromium`` (``apt-get install chromium``) is driven by Playwright for Python with
``executable_path`` set; Playwright's own downloaded browsers are never used. The browser test is
skipped, saying why, only when one of the two is missing. It saves the page as
``test-artifacts/dashboard.png``.

The tests without a browser check how the page is served: only the files in ``static/``, with a
policy that keeps scripts and data on the emulator's own origin, and no cross-site downlinks.
"""

import http.client
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kpnthings import auth
from kpnthings_tools import demo, emulator, provision

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30000
# A simulated door contact beside the board's own sensors, for a boolean reading.
MARKUP = '<img src=x onerror="window.__injected=1"><b>bold</b>'
SENSORS = [{"type": "digital", "pin": 14, "name": "door", "pull": "up"}]


def _browser_missing():
    if not os.path.exists(CHROMIUM):
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (.venv/bin/pip install playwright)"
    return None


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, dict(resp.headers), resp.read()


def _uplink(url, body, token):
    req = urllib.request.Request(
        url + emulator.INGEST_PATH,
        data=body,
        headers={"Content-Type": "application/json", "Things-Message-Token": token},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


@pytest.fixture
def server(tmp_path):
    devices = [(provision.new_dvnuuid(), provision.new_secret()) for _ in range(2)]
    emu = emulator.Emulator(str(tmp_path / "emulator.db"), devices, log=lambda line: None)
    srv = emu.serve("127.0.0.1", 0)
    srv.devices = devices
    try:
        yield srv
    finally:
        srv.shutdown()


# -- how the page is served (no browser needed) -----------------------------------------------


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


# -- the page in Chromium, with the firmware running -------------------------------------------


class Firmware:
    """firmware/main.py on the unix port, its output collected line by line."""

    def __init__(self, tmp_path, dvnuuid, secret, url):
        cfg = demo.demo_config(dvnuuid, secret, url, 60, 1, {"sensors": SENSORS})
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg))
        self.lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [demo.micropython_binary(), str(demo.FIRMWARE)],
            cwd=str(tmp_path),
            env=demo.firmware_env(path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self):
        stdout = self.proc.stdout
        assert stdout is not None
        for line in iter(stdout.readline, ""):
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def output(self):
        with self._lock:
            return list(self.lines)

    def wait_for_line(self, text, timeout_s=30):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                self._thread.join(2)
                return text in self.output()
            time.sleep(0.1)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._thread.join(5)


def _launch(playwright, profile):
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )


def _shown(page, selector):
    """The element once the page shows it (30 s at most)."""
    handle = page.wait_for_selector(selector, timeout=WAIT_MS)
    assert handle is not None, selector
    return handle


def _count(page, name):
    value = page.get_attribute('.chart[data-name="%s"]' % name, "data-count")
    return int(value or 0)


def test_dashboard_shows_the_running_firmware_and_switches_its_led(server, tmp_path):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    (dvnuuid, secret), (other, other_secret) = server.devices
    stranger = provision.new_dvnuuid()
    firmware = Firmware(tmp_path, dvnuuid, secret, server.url)
    seen = []  # every response the page received
    foreign = []  # requests that tried to leave the emulator's origin
    problems = []  # console errors (a CSP violation shows up here) and page errors
    try:
        with sync_playwright() as pw:
            context = _launch(pw, tmp_path / "chromium-profile")
            try:

                def only_the_emulator(route):
                    if route.request.url.startswith(server.url + "/"):
                        route.continue_()
                    else:
                        foreign.append(route.request.url)
                        route.abort()

                context.route("**/*", only_the_emulator)
                page = context.new_page()
                page.on("response", lambda resp: seen.append(resp))
                page.on(
                    "console",
                    lambda msg: problems.append(msg.text) if msg.type == "error" else None,
                )
                page.on("pageerror", lambda err: problems.append(str(err)))
                page.goto(server.url + "/#" + dvnuuid)  # the device the page opens on

                # The device shows up, accepted, and its readings reach the charts.
                card = '.device[data-dvnuuid="%s"]' % dvnuuid
                page.wait_for_selector(card + '[data-outcome="accepted"]', timeout=WAIT_MS)
                for name in ("temperature", "humidity", "batteryVoltage"):
                    page.wait_for_selector(
                        '.chart[data-name="%s"] canvas' % name, state="attached", timeout=WAIT_MS
                    )
                assert "(°C)" in page.inner_text(".chart-card:has(.chart[data-name=temperature])")
                first = _count(page, "temperature")
                assert first >= 1
                # Live: more points arrive without a reload.
                page.wait_for_function(
                    "n => Number(document.querySelector('.chart[data-name=temperature]')"
                    ".getAttribute('data-count')) > n",
                    arg=first,
                    timeout=WAIT_MS,
                )
                latest = page.inner_text(".chart-card:has(.chart[data-name=temperature]) .latest")
                assert latest.endswith("°C") and float(latest.split()[0]) > 0
                # A boolean reading is shown as its latest value.
                door = _shown(page, '#values tr[data-name="door"]')
                assert door.get_attribute("data-value") in ("true", "false")

                # A wrong token and an unknown device are visible at a glance. The bad-token
                # body carries the device's own secret, which must never reach the page.
                body = (
                    '[{"bn":"%s","n":"note","vs":"%s"}]' % (auth.base_name(other), other_secret)
                ).encode()
                assert _uplink(server.url, body, auth.message_token(body, "x" * 40)) == 401
                # The stranger's body carries markup: the page must show it as text.
                pack = [{"bn": auth.base_name(stranger), "n": "x", "vs": MARKUP}]
                body = json.dumps(pack, separators=(",", ":")).encode()
                assert b"<img" in body
                assert _uplink(server.url, body, auth.message_token(body, "y" * 40)) == 404
                bad = _shown(
                    page, '.device[data-dvnuuid="%s"][data-outcome="unauthorized"]' % other
                )
                assert "bad token" in bad.inner_text()
                assert "✗ mismatch" in bad.inner_text()
                unknown = _shown(page, '.device.unregistered[data-dvnuuid="%s"]' % stranger)
                assert "unknown device" in unknown.inner_text()
                # A body too broken to name a device still shows up, as malformed.
                assert _uplink(server.url, b"readings?", "0" * 64) == 400
                broken = _shown(
                    page, '.device.unregistered[data-dvnuuid=""][data-outcome="malformed"]'
                )
                assert "400 malformed" in broken.inner_text()
                assert "not JSON" in broken.inner_text()
                shown = page.inner_text('#log tr[data-outcome="unknown device"] td:nth-child(6)')
                assert shown == body.decode()
                assert page.query_selector_all("img") == []
                assert page.evaluate("window.__injected") is None

                # Queue led on through the form.
                page.fill("#dl-name", "led")
                for typed, sent in (
                    ("42", '{"n":"led","v":42}'),
                    ("-0.5e1", '{"n":"led","v":-5}'),
                    ("on", '{"n":"led","vs":"on"}'),
                    ('"true"', '{"n":"led","vs":"true"}'),
                    ("FALSE", '{"n":"led","vb":false}'),
                ):
                    page.fill("#dl-value", typed)
                    assert page.inner_text("#dl-preview") == "[%s]" % sent, typed
                page.fill("#dl-value", "true")
                assert page.inner_text("#dl-preview") == '[{"n":"led","vb":true}]'
                page.click("#dl-submit")
                page.wait_for_function(
                    "() => document.getElementById('dl-result').textContent"
                    ".startsWith('Queued downlink #1')",
                    timeout=WAIT_MS,
                )
                page.wait_for_selector('#queue tr[data-id="1"]', timeout=WAIT_MS)
                queue = server.emulator.downlinks(dvnuuid)
                assert [json.loads(q["body"]) for q in queue] == [
                    [{"bn": auth.base_name(dvnuuid), "n": "led", "vb": True}]
                ]

                # The simulated board applies it, the page sees it delivered and echoed.
                assert firmware.wait_for_line("[pin] LED -> 1"), firmware.output()
                row = _shown(page, '#queue tr[data-id="1"][data-state="delivered"]')
                assert "led = true" in row.inner_text()
                echo = _shown(page, '#actuators tr[data-name="led"][data-echoed="true"]')
                assert "✓ true" in echo.inner_text()
                # The chart does not mistake the actuator's echo for a measurement.
                assert page.query_selector('.chart[data-name="led"]') is None

                # The raw log shows each body exactly as received, and the response sent.
                page.wait_for_timeout(1500)  # a few more points for the picture
                messages = server.emulator.messages(None, 0, 1000)
                delivered = [m for m in messages if m["downlink_id"] == 1]
                assert len(delivered) == 1
                log_row = '#log tr[data-id="%d"]' % delivered[0]["id"]
                cells = page.query_selector_all(log_row + " td")
                assert cells[5].inner_text() == delivered[0]["body"]
                assert cells[6].inner_text() == delivered[0]["response_body"]
                assert "✓ ok" in cells[4].inner_text()
                refused = page.query_selector_all('#log tr[data-outcome="unauthorized"] td')
                assert "[secret]" in refused[5].inner_text()
                assert "does not match" in refused[6].inner_text()  # the 401's body, as sent

                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

                # Nothing the page got or shows holds a secret.
                pages = [page.content(), page.inner_text("body")]
                captured = []
                for resp in seen:
                    try:
                        captured.append((resp.url, resp.body().decode("utf-8", "replace")))
                    except Exception:  # a body the browser no longer holds
                        continue
            except BaseException:
                # What the test saw, for whoever reads the failure.
                ARTIFACTS.mkdir(exist_ok=True)
                for open_page in context.pages:
                    open_page.screenshot(path=str(ARTIFACTS / "dashboard-failure.png"))
                print("browser problems:", problems)
                print("firmware output:", "\n".join(firmware.output()), sep="\n")
                raise
            finally:
                context.close()
    finally:
        firmware.stop()

    assert sum(1 for url, _ in captured if "/api/" in url) >= 10, "too few API answers to check"
    bodies = [text for _, text in captured]
    for path in (
        "/",
        "/api/devices",
        "/api/messages?limit=1000",
        "/api/devices/%s/messages" % dvnuuid,
        "/api/devices/%s/downlinks" % dvnuuid,
        "/api/devices/%s/messages" % other,
        "/api/devices/%s" % other,
    ):
        bodies.append(_get(server.url + path)[2].decode("utf-8", "replace"))
    for text in pages + bodies:
        assert secret not in text and other_secret not in text
    assert not foreign, foreign
    assert not problems, problems
    assert firmware.proc.returncode is not None


@pytest.fixture
def named_server(tmp_path):
    devices = [
        (provision.new_dvnuuid(), provision.new_secret(), name) for name in ("kitchen", "shed")
    ]
    emu = emulator.Emulator(str(tmp_path / "emulator.db"), devices, log=lambda line: None)
    srv = emu.serve("127.0.0.1", 0)
    srv.devices = devices
    try:
        yield srv
    finally:
        srv.shutdown()


def test_dashboard_names_devices_and_shows_what_the_board_answered(named_server, tmp_path):
    # Issue 19: cards were two UUIDs, the form did not say where a downlink goes, and a refused
    # command showed "delivered" and "not echoed yet" for ever.
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    server = named_server
    (dvnuuid, secret, _), (shed, shed_secret, _) = server.devices
    firmware = Firmware(tmp_path, dvnuuid, secret, server.url)
    problems = []
    try:
        with sync_playwright() as pw:
            context = _launch(pw, tmp_path / "chromium-profile")
            try:
                page = context.new_page()
                page.on(
                    "console",
                    lambda msg: problems.append(msg.text) if msg.type == "error" else None,
                )
                page.on("pageerror", lambda err: problems.append(str(err)))
                page.goto(server.url + "/#" + dvnuuid)

                # Each card leads with the device's name, its UUID beneath.
                card = _shown(page, '.device[data-dvnuuid="%s"][data-outcome="accepted"]' % dvnuuid)
                assert card.inner_text().splitlines()[:2] == ["kitchen", dvnuuid]
                other = _shown(page, '.device[data-dvnuuid="%s"]' % shed)
                assert other.inner_text().splitlines()[0] == "shed"
                # The form names the device it sends to.
                target = _shown(page, '#dl-target[data-dvnuuid="%s"]' % dvnuuid)
                assert target.inner_text() == "to kitchen " + dvnuuid

                # A command the board refuses: not an actuator, then not a value for the LED.
                for name, value, why in (
                    ("relay", "true", "unknown actuator"),
                    ("led", "banana", "wrong type: vs given, digital wants vb or v 0/1"),
                ):
                    page.fill("#dl-name", name)
                    page.fill("#dl-value", value)
                    page.click("#dl-submit")
                    page.wait_for_function(
                        "() => document.getElementById('dl-result').textContent"
                        ".includes(' for kitchen: ')",
                        timeout=WAIT_MS,
                    )
                    row = _shown(
                        page, '#actuators tr[data-name="%s"][data-result="refused"]' % name
                    )
                    assert row.inner_text().split("\t")[2] == "✗ refused: " + why
                    page.evaluate("document.getElementById('dl-result').textContent = ''")
                queue = page.query_selector_all('#queue tr[data-result="refused"]')
                assert len(queue) == 2
                assert "relay: unknown actuator" in queue[-1].inner_text()
                assert "led: wrong type: vs given" in queue[0].inner_text()
                assert "answered in #" in queue[0].inner_text()
                assert "delivered" in queue[0].inner_text()
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "dashboard-answers.png"), full_page=True)

                # A device that never answers: said so after a few uplinks.
                server.emulator.queue_downlink(shed, b'[{"n":"led","vb":true}]')
                body = ('[{"bn":"%s","n":"x","v":1}]' % auth.base_name(shed)).encode()
                for _ in range(1 + emulator.ANSWER_UPLINKS):
                    assert _uplink(server.url, body, auth.message_token(body, shed_secret)) == 200
                page.click('.device[data-dvnuuid="%s"]' % shed)
                _shown(page, '#dl-target[data-dvnuuid="%s"]' % shed)
                row = _shown(page, '#queue tr[data-result="never answered"]')
                assert "never answered\n3 uplinks since" in row.inner_text()
                led = _shown(page, '#actuators tr[data-name="led"][data-result="never answered"]')
                assert "— never answered" in led.inner_text()
                # The log names devices by their names: once it shows the selected device (the
                # page re-renders it a moment after the click).
                page.wait_for_function(
                    "() => { const c = document.querySelector("
                    "'#log tbody tr:first-child td:nth-child(3)');"
                    " return c !== null && c.textContent.includes('shed'); }",
                    timeout=WAIT_MS,
                )
            except BaseException:
                ARTIFACTS.mkdir(exist_ok=True)
                for open_page in context.pages:
                    open_page.screenshot(path=str(ARTIFACTS / "dashboard-answers-failure.png"))
                print("browser problems:", problems)
                print("firmware output:", "\n".join(firmware.output()), sep="\n")
                raise
            finally:
                context.close()
    finally:
        firmware.stop()
    assert not problems, problems


def test_dashboard_marks_a_message_that_holds_duplicates(server, tmp_path):
    # Issue 18, item 3: a pack sent again after a lost answer holds records already stored.
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    dvnuuid, secret = server.devices[0]
    body = ('[{"bn":"urn:dev:DVNUUID:%s:","bt":1760000000,"n":"t","v":1}]' % dvnuuid).encode()
    token = auth.message_token(body, secret)
    assert _uplink(server.url, body, token) == 200
    assert _uplink(server.url, body, token) == 200
    with sync_playwright() as pw:
        context = _launch(pw, tmp_path / "chromium-profile")
        try:
            page = context.new_page()
            page.goto(server.url + "/#" + dvnuuid)
            mark = _shown(page, '#log [data-duplicates="1"]')
            assert mark.inner_text() == "1 duplicate"
            assert len(page.query_selector_all("#log [data-duplicates]")) == 1
        finally:
            context.close()


def test_dashboard_shows_how_the_times_were_obtained(server, tmp_path):
    # Issue 18, item 5: a pack whose times are not all NTP's says how they were obtained
    # (timeQuality), a pack without times how many readings it holds (undatedReadings): the
    # log marks each such message, the device card the last one and the readings so sent.
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

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
    with sync_playwright() as pw:
        context = _launch(pw, tmp_path / "chromium-profile")
        try:
            page = context.new_page()
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
        finally:
            context.close()


def test_dashboard_takes_the_api_token_from_its_address(tmp_path):
    """An emulator with an API token (mock-server --host 0.0.0.0): the page shows nothing and
    says why without the token, and everything with /#token=..., which leaves the address bar
    at once; the downlink form sends the token too (issue 19, item 6)."""
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    dvnuuid, secret = provision.new_dvnuuid(), provision.new_secret()
    emu = emulator.Emulator(":memory:", [(dvnuuid, secret)], log=lambda line: None)
    server = emu.serve("127.0.0.1", 0, api_token="bench-token-7")
    body = ('[{"bn":"%s","n":"temperature","u":"Cel","v":21.5}]' % auth.base_name(dvnuuid)).encode()
    try:
        assert _uplink(server.url, body, auth.message_token(body, secret)) == 200
        with sync_playwright() as pw:
            context = _launch(pw, tmp_path / "chromium-profile")
            try:
                page = context.new_page()
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

                other = context.new_page()  # another tab has to be given it again
                other.goto(server.url + "/#token=wrong-token")
                other.wait_for_selector('#conn[data-state="locked"]', timeout=WAIT_MS)
                assert "not the emulator's" in other.inner_text("#conn")
            finally:
                context.close()
        assert len(emu.downlinks(dvnuuid)) == 1
    finally:
        server.shutdown()
