"""What `make demo` reads back from the emulator's API, and the checks it prints at the end.

kpnthings_tools.demo queues the downlink with queue_downlink() and, once the firmware has
exited, reads the stored messages (get_messages) and prints them with summary(): the downlink was
delivered, the simulated pin switched and the next accepted uplink echoed the LED's state.
"""

import json
import urllib.request

EXPECTED_PIN_LINE = "[pin] LED -> 1"


def get_messages(base_url, dvnuuid):
    """The emulator's stored messages for the device, read through its HTTP API."""
    url = "%s/api/devices/%s/messages" % (base_url, dvnuuid)
    with urllib.request.urlopen(url, timeout=5) as resp:
        data = json.loads(resp.read().decode("utf-8"))
    if isinstance(data, dict):  # {"messages": [...]} or a bare list, whichever the API gives
        data = data.get("messages", [])
    return data


def queue_downlink(base_url, dvnuuid, pack):
    """POST a SenML downlink pack to the emulator's API; returns the parsed answer."""
    req = urllib.request.Request(
        "%s/api/devices/%s/downlinks" % (base_url, dvnuuid),
        data=json.dumps(pack).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read().decode("utf-8") or "null")


def _short_name(name, bn):
    return name[len(bn) :] if name.startswith(bn) else name


def describe_records(records, bn):
    parts = []
    for rec in records or ():
        name = _short_name(rec.get("n", ""), bn)
        for key in ("v", "vb", "vs", "vd"):
            if key in rec:
                value = json.dumps(rec[key]) if key == "vb" else str(rec[key])
                unit = " " + rec["u"] if rec.get("u") else ""
                parts.append("%s=%s%s" % (name, value, unit))
    return ", ".join(parts)


def find_echo(messages, bn, name="led", value=True):
    """(index of the message whose answer carried the downlink, index of the first later
    accepted message that reports `name` = value), each None if not found."""
    delivered = None
    for i, msg in enumerate(messages):
        if delivered is None and msg.get("downlink_id") is not None:
            delivered = i
            continue
        if delivered is not None and msg.get("outcome") == "accepted":
            for rec in msg.get("records") or ():
                if _short_name(rec.get("n", ""), bn) == name and rec.get("vb") is value:
                    return delivered, i
    return delivered, None


def summary(say, messages, bn, rc, cycles, device_lines):
    """Print what the emulator stored and the checks; True if every check passed."""
    say.text()
    say.text("What the emulator stored (GET /api/devices/<uuid>/messages):")
    delivered, echo = find_echo(messages, bn)
    for i, msg in enumerate(messages):
        note = ""
        if i == delivered:
            note = "   <- answered with the downlink"
        elif i == echo:
            note = "   <- the LED's new state, echoed"
        say.text(
            "  #%d %s %s: %s%s"
            % (
                i + 1,
                msg.get("status"),
                msg.get("outcome"),
                describe_records(msg.get("records"), bn),
                note,
            )
        )
    accepted = sum(1 for m in messages if m.get("outcome") == "accepted")
    checks = [
        ("firmware exited cleanly (status %s)" % rc, rc == 0),
        ("%d of %d uplinks accepted" % (accepted, cycles), accepted == cycles),
        (
            "downlink delivered with answer #%s"
            % (delivered + 1 if delivered is not None else "-"),
            delivered is not None,
        ),
        ("simulated pin switched: %s" % EXPECTED_PIN_LINE, EXPECTED_PIN_LINE in device_lines),
        (
            "state echoed in uplink #%s: led=true" % (echo + 1 if echo is not None else "-"),
            echo is not None,
        ),
    ]
    say.text()
    for text, ok in checks:
        say.text("  %s %s" % ("ok  " if ok else "FAIL", text))
    good = all(ok for _, ok in checks)
    say.text()
    say.text("demo OK" if good else "demo FAILED")
    return good
