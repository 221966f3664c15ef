"""The emulator's bench dashboard in a real headless Chromium with the firmware running
(firmware/main.py on the unix port): its readings charted live, a downlink to its LED queued from
the page and applied, no secret on the page; and devices by name with what the board answered.
It saves the page as ``test-artifacts/dashboard.png`` and ``dashboard-answers.png``.
"""

import json
import subprocess
import threading
import time

import pytest
from _dashboard_support import ARTIFACTS, WAIT_MS, _count, _get, _shown, _uplink

from kpnthings import auth
from kpnthings_tools import demo, emulator, provision

# A simulated door contact beside the board's own sensors, for a boolean reading.
MARKUP = '<img src=x onerror="window.__injected=1"><b>bold</b>'
SENSORS = [{"type": "digital", "pin": 14, "name": "door", "pull": "up"}]


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


def test_dashboard_shows_the_running_firmware_and_switches_its_led(server, tmp_path, browser):
    (dvnuuid, secret), (other, other_secret) = server.devices
    stranger = provision.new_dvnuuid()
    firmware = Firmware(tmp_path, dvnuuid, secret, server.url)
    seen = []  # every response the page received
    foreign = []  # requests that tried to leave the emulator's origin
    problems = []  # console errors (a CSP violation shows up here) and page errors
    try:
        try:

            def only_the_emulator(route):
                if route.request.url.startswith(server.url + "/"):
                    route.continue_()
                else:
                    foreign.append(route.request.url)
                    route.abort()

            browser.route("**/*", only_the_emulator)
            page = browser.new_page()
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
            bad = _shown(page, '.device[data-dvnuuid="%s"][data-outcome="unauthorized"]' % other)
            assert "bad token" in bad.inner_text()
            assert "✗ mismatch" in bad.inner_text()
            unknown = _shown(page, '.device.unregistered[data-dvnuuid="%s"]' % stranger)
            assert "unknown device" in unknown.inner_text()
            # A body too broken to name a device still shows up, as malformed.
            assert _uplink(server.url, b"readings?", "0" * 64) == 400
            broken = _shown(page, '.device.unregistered[data-dvnuuid=""][data-outcome="malformed"]')
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
            for open_page in browser.pages:
                open_page.screenshot(path=str(ARTIFACTS / "dashboard-failure.png"))
            print("browser problems:", problems)
            print("firmware output:", "\n".join(firmware.output()), sep="\n")
            raise
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


def test_dashboard_names_devices_and_shows_what_the_board_answered(named_server, tmp_path, browser):
    # Issue 19: cards were two UUIDs, the form did not say where a downlink goes, and a refused
    # command showed "delivered" and "not echoed yet" for ever.
    server = named_server
    (dvnuuid, secret, _), (shed, shed_secret, _) = server.devices
    firmware = Firmware(tmp_path, dvnuuid, secret, server.url)
    problems = []
    try:
        try:
            page = browser.new_page()
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
                row = _shown(page, '#actuators tr[data-name="%s"][data-result="refused"]' % name)
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
            for open_page in browser.pages:
                open_page.screenshot(path=str(ARTIFACTS / "dashboard-answers-failure.png"))
            print("browser problems:", problems)
            print("firmware output:", "\n".join(firmware.output()), sep="\n")
            raise
    finally:
        firmware.stop()
    assert not problems, problems
