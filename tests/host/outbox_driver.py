"""Host-test driver: the device's outbox loop, run on the MicroPython unix port (or CPython).

It does what the firmware loop does with the outbox, without sensors or pins: append readings,
build packs with batch.build_pack, send them with client.Client over one kept-alive connection,
then ack, dead-letter or back off (Backoff for transient failures, FixedBackoff for 401/404).
Each reading is {"n": "seq", "v": <sequence number>, "t": T0 + <sequence number>}, so a test can
match what the emulator received and what is still queued against what was appended.

Usage: micropython tests/host/outbox_driver.py CONFIG.json
(a file: the unix port dies with "FATAL: uncaught NLR" on a command-line argument of 256 bytes
or more, so the config does not go on the command line)
Config keys: dir, url, uuid, secret, bn (default: the device's base name), first, readings
(0: forever), per_cycle (max readings appended per cycle; random 1..n when random is true),
cycles (0: until readings are appended and delivered), interval_ms, max_body, max_bytes,
dead_max_bytes, base_ms, cap_ms, fixed_ms, timeout_s, heap_every (cycles between H lines).

Events on stdout, one write per line so a SIGKILL never leaves half a number behind:
  A <seq>                                   appended: on flash when printed
  S <start ms> <end ms> <used> <status> <outcome>   a send returned (ticks ms)
  W <ticks ms> <delay ms> <outcome>         backing off after a failed send
  H <cycle> <gc.mem_alloc() after collect>  heap in use (long run)
  D <queued> <dropped> <dead>               done
"""

import gc
import json
import sys

from kpnthings.backoff import Backoff, FixedBackoff
from kpnthings.batch import build_pack
from kpnthings.client import Client
from kpnthings.compat import sleep_ms, ticks_add, ticks_diff, ticks_ms
from kpnthings.outbox import Outbox

T0 = 1760000000


def emit(line):
    sys.stdout.write(line + "\n")
    if sys.implementation.name != "micropython":
        sys.stdout.flush()


def flush(box, client, bn, cfg, transient, auth):
    """Send packs until the queue is empty; return a backoff delay in ms, or 0."""
    for _ in range(cfg.get("max_packs", 8)):
        dropped = box.dropped
        extra = [{"n": "droppedReadings", "v": dropped}] if dropped else []
        queued = box.peek(64)
        if not queued and not extra:
            return 0
        body, used = build_pack(bn, queued, cfg.get("max_body", 1024), extra)
        if used == 0 and queued and not build_pack(bn, queued[:1], cfg.get("max_body", 1024))[1]:
            box.dead_letter(1)  # can never fit: would block the queue forever
            continue
        start = ticks_ms()
        r = client.send(body)
        outcome = r.outcome.replace(" ", "_")
        emit("S %d %d %d %s %s" % (start, ticks_ms(), used, r.status, outcome))
        if r.outcome == "accepted":
            box.ack(used)
            if dropped:
                box.clear_dropped(dropped)
            transient.reset()
            auth.reset()
        elif r.outcome == "malformed":
            box.dead_letter(used)
        else:
            b = transient if r.outcome == "retry" else auth
            delay = b.next_delay()
            emit("W %d %d %s" % (ticks_ms(), delay, outcome))
            return delay
        if not len(box) and not box.dropped:
            return 0
    return 0


def main(cfg):
    box = Outbox(cfg["dir"], cfg.get("max_bytes", 32768), cfg.get("dead_max_bytes", 8192))
    client = Client(cfg["uuid"], cfg["secret"], url=cfg["url"], timeout=cfg.get("timeout_s", 2))
    bn = cfg.get("bn") or client.base_name
    transient = Backoff(cfg.get("base_ms", 100), cfg.get("cap_ms", 2000))
    auth = FixedBackoff(cfg.get("fixed_ms", 5000), jitter_ms=0)
    seq = cfg.get("first", 0)
    readings = cfg.get("readings", 0)
    cycles = cfg.get("cycles", 0)
    per_cycle = cfg.get("per_cycle", 1)
    interval = cfg.get("interval_ms", 0)
    heap_every = cfg.get("heap_every", 0)
    rand = None
    if cfg.get("random"):
        import random

        rand = random
    appended = 0
    cycle = 0
    next_send = ticks_ms()
    while True:
        cycle += 1
        n = per_cycle if rand is None else 1 + rand.getrandbits(8) % per_cycle
        for _ in range(n):
            if readings and appended >= readings:
                break
            box.append({"n": "seq", "v": seq, "t": T0 + seq})
            emit("A %d" % seq)
            seq += 1
            appended += 1
        if ticks_diff(ticks_ms(), next_send) >= 0:
            delay = flush(box, client, bn, cfg, transient, auth)
            next_send = ticks_add(ticks_ms(), delay)
        if heap_every and cycle % heap_every == 0:
            gc.collect()
            emit("H %d %d" % (cycle, gc.mem_alloc()))
        if cycles and cycle >= cycles:
            break
        if not cycles and readings and appended >= readings and not len(box):
            break
        if interval:
            sleep_ms(interval)
    client.close()
    emit("D %d %d %d" % (len(box), box.dropped, box.dead_count))


with open(sys.argv[1]) as _f:
    _cfg = json.load(_f)
main(_cfg)
