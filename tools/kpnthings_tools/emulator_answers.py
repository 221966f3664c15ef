"""What a device answered to a downlink: the ``downlink`` record and each queue entry's result.

A device answers a downlink in its next accepted uplink with a record named ``downlink``
(docs/downlinks.md): ``{"n":"downlink","vs":"led=applied; relay=refused: unknown actuator"}``.
Each queue entry says what came of it: ``result`` is ``queued``, ``waiting`` (delivered, not
answered yet), ``applied``, ``refused``, ``partly refused``, or ``never answered`` (no answer
in the ``ANSWER_UPLINKS`` accepted uplinks after the delivery, or the next downlink went out
first); ``answer`` the text and ``answer_message_id`` the message it came in; ``commands``
one ``{"n", "value", "result", "reason"}`` per command of the pack.
"""

import json
import re

from kpnthings import auth
from kpnthings_tools.emulator_ingest import ACCEPTED

# The record a device answers a downlink with, and how many accepted uplinks after a delivery
# the emulator waits for it. The firmware answers in the very next one; the slack covers
# uplinks from elsewhere under the same identity (`kpnthings send` during a bench test).
ANSWER_RECORD = "downlink"
ANSWER_UPLINKS = 3
# One answer in the text: "led=applied", "led=refused: <why>", "refused: <why>" (the whole
# pack), or "and 3 more" (answers that did not fit in the record, counted).
_ANSWER_ITEM = re.compile(
    r"^(?:(?P<n>[A-Za-z0-9\-:./_]*)=(?P<r>applied|refused)(?:: (?P<why>.*))?"
    r"|(?P<all>refused): (?P<allwhy>.*)|and (?P<more>[0-9]+) more)$"
)
_ANSWER_SPLIT = re.compile(
    r"; (?=[A-Za-z0-9\-:./_]*=(?:applied|refused)|refused: |and [0-9]+ more$)"
)


def parse_answer(text):
    """A device's answer text -> ([{"n", "result", "reason"}, ...], count of answers only
    counted). ``n`` is None for an answer about the whole pack; an item the emulator cannot
    read comes back as result ``unreadable`` with the item as its reason."""
    items = []
    more = 0
    for part in _ANSWER_SPLIT.split(text) if text else ():
        m = _ANSWER_ITEM.match(part)
        if m is None:
            items.append({"n": None, "result": "unreadable", "reason": part})
        elif m.group("more"):
            more += int(m.group("more"))
        elif m.group("all"):
            items.append({"n": None, "result": "refused", "reason": m.group("allwhy")})
        else:
            items.append(
                {"n": m.group("n"), "result": m.group("r"), "reason": m.group("why") or ""}
            )
    return items, more


def answer_in(message):
    """The text of the downlink answer an accepted message carries, or None."""
    if message["outcome"] != ACCEPTED or not message["records"] or not message["dvnuuid"]:
        return None
    name = auth.base_name(message["dvnuuid"]) + ANSWER_RECORD
    for rec in message["records"]:
        if rec.get("n") == name and isinstance(rec.get("vs"), str):
            return rec["vs"]
    return None


def downlink_commands(body):
    """The commands of a queued downlink body: [{"bn", "n", "value"}], bn resolved as SenML
    does (a body queued with validate=False may be anything: then [])."""
    try:
        pack = json.loads(body)
    except ValueError:
        return []
    if not isinstance(pack, list):
        return []
    out = []
    bn = ""
    for rec in pack:
        if not isinstance(rec, dict):
            return []
        if isinstance(rec.get("bn"), str):
            bn = rec["bn"]
        if not isinstance(rec.get("n"), str):
            continue
        value = next((rec[k] for k in ("vb", "v", "vs", "vd") if k in rec), None)
        out.append({"bn": bn, "n": rec["n"], "value": value})
    return out


def with_answer(entry, answer_to):
    """A queue entry with what the device answered: result, answer, commands.

    ``answer_to(dvnuuid, message_id)`` finds the answer to the downlink delivered with that
    message: (text, its message id, accepted uplinks looked at, window closed)
    (``emulator_store.Store.answer_to``)."""
    base = auth.base_name(entry["dvnuuid"])
    commands = []
    for rec in downlink_commands(entry["body"]):
        full = rec["bn"] + rec["n"]
        commands.append(
            {
                "n": full[len(base) :] if full.startswith(base) else full,
                "value": rec["value"],
                "result": "queued",
                "reason": "",
            }
        )
    entry.update(answer=None, answer_message_id=None, uplinks_since=0, commands=commands)
    if entry["message_id"] is None:
        entry["result"] = "queued"
        return entry
    text, mid, seen, closed = answer_to(entry["dvnuuid"], entry["message_id"])
    entry["uplinks_since"] = seen
    if text is None:
        entry["result"] = "never answered" if closed else "waiting"
        for command in commands:
            command["result"] = entry["result"]
        return entry
    entry["answer"] = text
    entry["answer_message_id"] = mid
    items, more = parse_answer(text)
    whole = [i for i in items if i["n"] is None and i["result"] == "refused"]
    for command in commands:
        match = next((i for i in items if i["n"] == command["n"]), None)
        if match is not None:
            items.remove(match)
            command["result"], command["reason"] = match["result"], match["reason"]
        elif whole:
            command["result"], command["reason"] = "refused", whole[0]["reason"]
        elif more:
            command["result"] = "answered, not shown"
            command["reason"] = "the answer only counts it (and %d more)" % more
        else:
            command["result"] = "not answered"
    results = {c["result"] for c in commands}
    if results == {"applied"}:
        entry["result"] = "applied"
    elif results == {"refused"} or (not commands and whole):
        entry["result"] = "refused"
    elif "applied" in results and "refused" in results:
        entry["result"] = "partly refused"
    elif "refused" in results:
        entry["result"] = "refused"
    else:
        entry["result"] = "answered"
    return entry
