"""The health panel of the emulator's dashboard (kpnthings_tools.emulator_health, docs/health.md):
the latest health records of a device and the warning rules (a falling largest block, a growing
outbox, repeated resets), as rules, through the API from signed uplinks, and in a real headless
Chromium, where a warned line takes the warning colour (test_dashboard.py says how it runs)."""

import json

from _dashboard_support import ARTIFACTS, _shown, _uplink

from kpnthings import auth
from kpnthings_tools import emulator_health

BN = "urn:dev:DVNUUID:0b7f8c3e-5a2d-4c1e-9f6a-2d3e4f5a6b7c:"
T0 = 1800000000
HOUR = 3600


def _msg(t, outcome="accepted", **health):
    records = [{"n": BN + "temperature", "v": 21.5, "t": t}]
    for name, value in health.items():
        records.append({"n": BN + name, ("vs" if isinstance(value, str) else "v"): value, "t": t})
    return {"outcome": outcome, "records": records}


def _kinds(panel):
    return [w["kind"] for w in panel["warnings"]]


def test_no_health_record_no_panel():
    assert emulator_health.panel(BN, []) is None
    assert emulator_health.panel(BN, [_msg(T0), _msg(T0 + 60)]) is None
    # droppedReadings goes without health too: alone, it is no health report
    assert emulator_health.panel(BN, [_msg(T0, droppedReadings=3)]) is None


def test_a_steady_device_has_its_latest_values_and_no_warning():
    msgs = [
        _msg(T0, bootCount=1, resetCause="power-on", firmware="0.1.0", heapLargest=9000),
        _msg(T0 + HOUR, heapLargest=9100, outboxDepth=3, uptime=3600),
        _msg(T0 + 2 * HOUR, heapLargest=8900, outboxDepth=3, uptime=7200),
        _msg(T0 + 3 * HOUR, heapLargest=9000, outboxDepth=2, uptime=10800, wifiRssi=-61),
    ]
    panel = emulator_health.panel(BN, msgs)
    assert panel["warnings"] == []
    assert panel["reports"] == 4 and panel["at"] == T0 + 3 * HOUR
    latest = panel["latest"]
    assert latest["bootCount"] == 1 and latest["firmware"] == "0.1.0"
    assert latest["heapLargest"] == 9000 and latest["wifiRssi"] == -61 and latest["uptime"] == 10800
    assert panel["history"]["heapLargest"] == [9000, 9100, 8900, 9000]


def test_a_largest_block_falling_report_after_report_warns_until_a_boot():
    msgs = [_msg(T0, bootCount=1, heapLargest=9000)]
    msgs += [_msg(T0 + i * HOUR, heapLargest=9000 - 500 * i) for i in (1, 2)]
    panel = emulator_health.panel(BN, msgs)
    assert _kinds(panel) == ["heap"]
    assert panel["warnings"][0]["text"] == "largest free block falling: 9000 > 8500 > 8000 B"
    assert _kinds(emulator_health.panel(BN, msgs[:2])) == []  # one fall is not yet a trend
    # an unaccepted message's records count for nothing
    assert (
        _kinds(emulator_health.panel(BN, msgs[:2] + [_msg(T0, "malformed", heapLargest=1)])) == []
    )
    # a boot frees the heap: the falls before it are another boot's
    msgs.append(_msg(T0 + 3 * HOUR, bootCount=2, heapLargest=7000))
    assert _kinds(emulator_health.panel(BN, msgs)) == []


def test_a_growing_outbox_warns():
    msgs = [_msg(T0 + i * HOUR, outboxDepth=d) for i, d in enumerate((3, 3, 40, 90, 150))]
    panel = emulator_health.panel(BN, msgs)
    assert _kinds(panel) == ["outbox"]
    assert panel["warnings"][0]["text"] == "outbox growing: 40 < 90 < 150 readings"
    msgs.append(_msg(T0 + 6 * HOUR, outboxDepth=3))  # drained: no warning
    assert _kinds(emulator_health.panel(BN, msgs)) == []


def test_repeated_resets_within_a_day_warn():
    boots = [_msg(T0 + i * 2 * HOUR, bootCount=4 + i, resetCause="watchdog") for i in range(3)]
    panel = emulator_health.panel(BN, boots)
    assert _kinds(panel) == ["resets"]
    assert panel["warnings"][0]["text"] == "3 boots in 24 h (last: watchdog)"
    # boots that never reported count too: 5 -> 9 in a day is 4 more
    gaps = [_msg(T0 - 2 * 86400, bootCount=5), _msg(T0, bootCount=9)]
    assert emulator_health.panel(BN, gaps)["warnings"][0]["text"].startswith("4 boots")
    # two boots a day apart: no warning
    calm = [_msg(T0, bootCount=1), _msg(T0 + 86400 + 60, bootCount=2)]
    assert _kinds(emulator_health.panel(BN, calm)) == []
    assert _kinds(emulator_health.panel(BN, boots[:2])) == []


def _send(server, records):
    dvnuuid, secret = server.devices[0]
    body = json.dumps([dict(records[0], bn=auth.base_name(dvnuuid))] + records[1:]).encode()
    assert _uplink(server.url, body, auth.message_token(body, secret)) == 200


def _falling_and_growing(server):
    for i, (largest, depth) in enumerate(((9000, 3), (8000, 10), (7000, 20), (6000, 30))):
        head = {"bt": T0 + i * HOUR, "n": "temperature", "v": 21.5}
        records = [head, {"n": "heapLargest", "v": largest, "u": "B"}]
        records += [{"n": "heapFree", "v": 30000, "u": "B"}, {"n": "outboxDepth", "v": depth}]
        if i == 0:
            records += [{"n": "bootCount", "v": 1}, {"n": "firmware", "vs": "0.1.0"}]
        _send(server, records)


def test_the_api_shows_each_device_its_health(server, api):
    dvnuuid = server.devices[0][0]
    assert api.get("/api/devices/" + dvnuuid)["health"] is None
    _falling_and_growing(server)
    health = api.get("/api/devices/" + dvnuuid)["health"]
    assert health["reports"] == 4
    assert health["latest"]["heapLargest"] == 6000 and health["latest"]["firmware"] == "0.1.0"
    assert [w["kind"] for w in health["warnings"]] == ["heap", "outbox"]


def test_the_dashboard_draws_the_panel_and_warns_in_colour(server, browser):
    dvnuuid = server.devices[0][0]
    _falling_and_growing(server)
    page = browser.new_page()
    page.goto(server.url + "/#" + dvnuuid)
    card = '.device[data-dvnuuid="%s"] .health' % dvnuuid
    panel = _shown(page, card)
    assert panel.get_attribute("data-warnings") == "heap outbox"
    text = panel.inner_text()
    assert "heap free 30000 B · largest block 6000 B" in text
    assert "outbox 30" in text and "boot #1" in text and "firmware 0.1.0" in text
    assert "largest free block falling: 8000 > 7000 > 6000 B" in text
    color = "el => getComputedStyle(el).color"
    warned = page.eval_on_selector(card + ' [data-health="heap"]', color)
    plain = page.eval_on_selector(card + ' [data-health="resets"]', color)
    assert warned == "rgb(154, 91, 0)" and plain != warned  # --warn: #9a5b00
    assert page.eval_on_selector(card + ' [data-health="outbox"]', color) == warned
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-health.png"))
