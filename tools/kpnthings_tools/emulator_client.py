"""`kpnthings downlink` and `kpnthings messages`: the local emulator's JSON API, for scripts.

    kpnthings downlink DEVICE led=true [fan=50 ...] [--wait S] [--url URL]
    kpnthings downlink DEVICE                       (the queue, with what the device answered)
    kpnthings messages DEVICE [--since ID] [--limit N] [--json] [--url URL]

DEVICE is a DvnUUID, a device name the emulator knows (`mock-server --device-config` takes it
from the config's "name"), or the path of a device's config.json. Values are read as `send`
reads them: true/false go as `vb`, numbers as `v`, anything else (or a value in double quotes)
as `vs`. With `--wait S`, `downlink` waits until the device has answered (docs/downlinks.md) and
exits 0 only when every command was applied, so a bench test can be one shell script:

    kpnthings downlink kitchen led=true --wait 120 && kpnthings messages kitchen --limit 3

Exit status: 0 done (or every command applied), 1 refused, never answered, or no answer within
`--wait`; 2 a usage error or an emulator that cannot be reached.
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080"
POLL_S = 0.5
# What a queue entry's result may be once the device has had its say (emulator.py).
FINAL = ("applied", "refused", "partly refused", "never answered", "answered")


class ClientError(Exception):
    """The emulator cannot be reached, or refused the request; the message says which."""


# -- the HTTP side -----------------------------------------------------------------------------


# The emulator's API token (mock-server --api-token, or the one it printed when it listens
# beyond this machine): from --api-token or $KPNTHINGS_API_TOKEN.
_TOKEN = [None]


def _request(url, path, body=None, timeout=10):
    req = urllib.request.Request(url.rstrip("/") + path, data=body, method="GET")
    if _TOKEN[0]:
        req.add_header("Authorization", "Bearer " + _TOKEN[0])
    if body is not None:
        req.method = "POST"
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        reason = e.read().decode("utf-8", "replace").strip() or e.reason
        raise ClientError("the emulator at %s answered %d: %s" % (url, e.code, reason)) from None
    except (urllib.error.URLError, OSError) as e:
        why = getattr(e, "reason", e)
        raise ClientError(
            "no emulator at %s (%s): start one with `kpnthings mock-server --port 8080`, or"
            " give its address with --url" % (url, why)
        ) from None
    except ValueError:
        raise ClientError("the emulator at %s did not answer JSON" % url) from None


def _device_path(dvnuuid, what=""):
    return "/api/devices/%s%s" % (urllib.parse.quote(dvnuuid), what)


def resolve_device(url, device):
    """(dvnuuid, name or None) for a DvnUUID, a registered device's name, or a config path."""
    from kpnthings import auth

    if device.endswith(".json") and os.path.isfile(device):
        from . import provision

        try:
            device = provision.load_config(device)["dvnuuid"]
        except (OSError, ValueError) as e:
            raise ClientError("cannot read %s: %s" % (device, getattr(e, "strerror", e))) from None
    devices = _request(url, "/api/devices")
    try:
        dvnuuid = auth.check_dvnuuid(device)
    except ValueError:
        dvnuuid = None
    if dvnuuid is not None:
        for d in devices:
            if d["dvnuuid"] == dvnuuid:
                return dvnuuid, d.get("name")
        raise ClientError("device %s is not registered with the emulator at %s" % (dvnuuid, url))
    named = [d for d in devices if d.get("name") == device]
    if len(named) == 1:
        return named[0]["dvnuuid"], device
    if named:
        raise ClientError("%d devices are named %r: give the DvnUUID" % (len(named), device))
    known = sorted(d["name"] for d in devices if d.get("name"))
    raise ClientError(
        "no device named %r at %s (%s)"
        % (device, url, "named: " + ", ".join(known) if known else "no device has a name")
    )


def parse_command(item):
    """ "led=true" -> {"n": "led", "vb": true}; a value in double quotes is always text."""
    from .cli import parse_value

    name, sep, text = item.partition("=")
    if not sep or not name:
        raise ClientError("command %r must look like name=value (led=true, fan=50)" % item)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        value = text[1:-1]
    else:
        value = parse_value(text)
    if isinstance(value, bool):
        return {"n": name, "vb": value}
    if isinstance(value, (int, float)):
        return {"n": name, "v": value}
    return {"n": name, "vs": value}


def queue(url, dvnuuid, commands):
    """Queue one downlink pack of `commands` (records); returns the emulator's queue entry."""
    body = json.dumps(commands, separators=(",", ":")).encode("utf-8")
    return _request(url, _device_path(dvnuuid, "/downlinks"), body)


def downlinks(url, dvnuuid):
    return _request(url, _device_path(dvnuuid, "/downlinks"))


def messages(url, dvnuuid, since=0, limit=100):
    query = "?since=%d&limit=%d" % (since, limit)
    return _request(url, _device_path(dvnuuid, "/messages") + query)


def wait_for_answer(url, dvnuuid, downlink_id, timeout_s, poll_s=POLL_S, clock=time.monotonic):
    """The queue entry once its result is final, or the last one seen when `timeout_s` ends."""
    deadline = clock() + timeout_s
    while True:
        entry = next(e for e in downlinks(url, dvnuuid) if e["id"] == downlink_id)
        if entry.get("result") in FINAL or clock() >= deadline:
            return entry
        time.sleep(poll_s)


# -- what is printed ----------------------------------------------------------------------------


def _value_text(value):
    return json.dumps(value) if not isinstance(value, str) else value


def describe_downlink(entry):
    """Lines for one queue entry: its result, then one line per command."""
    head = "downlink #%d: %s" % (entry["id"], entry.get("result", entry["state"]))
    if entry.get("answer_message_id") is not None:
        head += " (answered in message #%d)" % entry["answer_message_id"]
    elif entry.get("result") == "waiting":
        head += " (delivered with message #%d; %d uplinks since)" % (
            entry["message_id"],
            entry.get("uplinks_since", 0),
        )
    elif entry.get("result") == "never answered":
        head += " (no answer in %d uplinks after message #%d)" % (
            entry.get("uplinks_since", 0),
            entry["message_id"],
        )
    lines = [head]
    for c in entry.get("commands") or ():
        line = "  %s = %s: %s" % (c["n"], _value_text(c["value"]), c["result"])
        if c.get("reason"):
            line += ": " + c["reason"]
        lines.append(line)
    if not entry.get("commands"):
        lines.append("  " + entry["body"])
    return lines


def describe_message(message):
    """One line per stored message: id, time, status, outcome, the readings or the reason."""
    head = "#%d %s %s %s" % (
        message["id"],
        message["received_at"],
        message["status"],
        message["outcome"],
    )
    bn = "urn:dev:DVNUUID:%s:" % message["dvnuuid"] if message.get("dvnuuid") else ""
    if message["outcome"] == "accepted":
        parts = []
        for rec in message.get("records") or ():
            name = rec.get("n", "")
            name = name[len(bn) :] if bn and name.startswith(bn) else name
            for key in ("v", "vb", "vs", "vd", "s"):
                if key in rec:
                    text = json.dumps(rec[key]) if key in ("vb", "vs") else str(rec[key])
                    parts.append("%s=%s%s" % (name, text, " " + rec["u"] if rec.get("u") else ""))
                    break
        line = head + ": " + ", ".join(parts)
    else:
        line = head + ": " + message.get("reason", "")
    if message.get("downlink_id") is not None:
        line += "  <- delivered downlink #%d" % message["downlink_id"]
    return line


# -- CLI glue (registered by cli.py) ------------------------------------------------------------


def add_parsers(sub):
    p = sub.add_parser(
        "downlink",
        help="queue a downlink on the local emulator (or list its queue), and wait for the answer",
    )
    p.add_argument("device", help="DvnUUID, device name, or the device's config.json")
    p.add_argument(
        "commands",
        nargs="*",
        metavar="name=value",
        help='true/false go as vb, numbers as v, other text (or "quoted") as vs',
    )
    p.add_argument("--url", default=DEFAULT_URL, help="the emulator (default %s)" % DEFAULT_URL)
    p.add_argument(
        "--api-token",
        default=os.environ.get("KPNTHINGS_API_TOKEN"),
        help="the emulator's API token, when it has one (default $KPNTHINGS_API_TOKEN)",
    )
    p.add_argument(
        "--wait",
        type=float,
        metavar="S",
        help="wait up to S seconds for the device's answer; exit 0 only if all were applied",
    )
    p.add_argument("--json", action="store_true", help="print the queue entries as JSON")
    p.set_defaults(run=_cmd_downlink)

    p = sub.add_parser("messages", help="list what the local emulator received from a device")
    p.add_argument("device", help="DvnUUID, device name, or the device's config.json")
    p.add_argument("--url", default=DEFAULT_URL, help="the emulator (default %s)" % DEFAULT_URL)
    p.add_argument(
        "--api-token",
        default=os.environ.get("KPNTHINGS_API_TOKEN"),
        help="the emulator's API token, when it has one (default $KPNTHINGS_API_TOKEN)",
    )
    p.add_argument("--since", type=int, default=0, metavar="ID", help="only messages after #ID")
    p.add_argument("--limit", type=int, default=20, help="the newest N (default 20, most 1000)")
    p.add_argument("--json", action="store_true", help="print the messages as the API gives them")
    p.set_defaults(run=_cmd_messages)


def _label(dvnuuid, name):
    return "%s (%s)" % (name, dvnuuid) if name else dvnuuid


def _cmd_downlink(args):
    _TOKEN[0] = args.api_token
    dvnuuid, name = resolve_device(args.url, args.device)
    if not args.commands:
        if args.wait is not None:
            raise ClientError("--wait needs a downlink to wait for: give name=value")
        entries = downlinks(args.url, dvnuuid)
        if args.json:
            print(json.dumps(entries, indent=1, sort_keys=True))
            return 0
        if not entries:
            print("no downlink queued for %s" % _label(dvnuuid, name))
        for entry in entries:
            print("\n".join(describe_downlink(entry)))
        return 0
    entry = queue(args.url, dvnuuid, [parse_command(c) for c in args.commands])
    if not args.json:
        print("queued downlink #%d for %s" % (entry["id"], _label(dvnuuid, name)))
    if args.wait is None:
        if args.json:
            print(json.dumps(entry, indent=1, sort_keys=True))
        return 0
    entry = wait_for_answer(args.url, dvnuuid, entry["id"], args.wait)
    if args.json:
        print(json.dumps(entry, indent=1, sort_keys=True))
    else:
        lines = describe_downlink(entry)
        if entry.get("result") not in FINAL:
            lines[0] += "; no answer within %g s" % args.wait
        print("\n".join(lines))
    return 0 if entry.get("result") == "applied" else 1


def _cmd_messages(args):
    _TOKEN[0] = args.api_token
    dvnuuid, _ = resolve_device(args.url, args.device)
    listed = messages(args.url, dvnuuid, args.since, args.limit)
    if args.json:
        print(json.dumps(listed, indent=1, sort_keys=True))
        return 0
    for message in listed:
        print(describe_message(message))
    return 0
