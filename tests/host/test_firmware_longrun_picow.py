"""Long run of the firmware on the Pico W model, as test_firmware_longrun.py runs it on the 64-bit
port (10 000 cycles, the mixed front end, nothing lost, heap flat), here over verified HTTPS.

test_firmware_ten_thousand_cycles_picow_model_over_https: the same mixed run on
micropython32 (MICROPYTHON32: the 32-bit unix port whose mbedTLS allocates from the GC heap, as
on a Pico W), from the armv6m .mpy files, over HTTPS verified against a test chain, with
-X heapsize = the Pico W model's full-cycle figure from `make bench` + 8 KB. The front end bounds
each connection to KEEPALIVE_REQUESTS requests (and closes after every 503 and 400), so the run
makes about 1600 TLS handshakes, each allocating mbedTLS's buffers (one of them 16 KB in one
piece) in the heap beside the outbox and the backlog: a handshake takes about 50 ms of
micropython32's CPU where a kept-alive cycle takes 3.5 ms, so one handshake a cycle would take
10 min alone.
"""

import collections
import json
import os
import shutil
import ssl
import time

import pytest
from _firmware_support import (
    ROOT,
    appended,
    build_board_mpy,
    firmware_cmd,
    lines,
)
from _longrun_support import (
    CYCLES,
    PER_CYCLE,
    early_late,
    failed_cycles,
    heap_samples,
    longrun_config,
    mixed_answers,
    run_polling,
    uplink_outcomes,
)
from _outbox_support import UUID, FrontServer, new_emulator, queued_seqs

from kpnthings_tools.bench import pki, runtimes

# `make bench`'s "heap: smallest -X heapsize, full cycle over verified HTTPS, Pico W model"
# (micropython32, the larger of the EC and RSA-2048 chains: RSA), measured on 2026-12-08, first
# run: 104,704 B (EC: 103,680 B). Used only when neither KPN_PICOW_FULL_CYCLE nor
# build/bench/results.json gives the figure; update it when the bench's figure moves.
PICOW_FULL_CYCLE_BYTES = 104704
PICOW_CHAIN = "rsa"  # the chain that figure was measured with
PICOW_MARGIN = 8 * 1024
# KPN_PICOW_ROOMY: another heap for the roomy case, to find where fragmentation starts to bite.
PICOW_ROOMY = int(os.environ.get("KPN_PICOW_ROOMY", 192 * 1024))
PICOW_ARCH = "armv6m"  # the .mpy tree the bench loads for the Pico W model
PICOW_EVERY = 100  # more samples than the 64-bit run's 250: compared within socket states
# Requests one connection serves before the front end closes it (besides every 503 and 400):
# about 1600 TLS handshakes in 10 000 cycles, at about 50 ms each (the run takes under 2 min).
KEEPALIVE_REQUESTS = int(os.environ.get("KPN_LONGRUN_KEEPALIVE", "4"))
GC_BLOCK = 16  # bytes per GC block on a 32-bit port, the unit of mem_info's "max free sz"
BENCH_RESULTS = ROOT / "build" / "bench" / "results.json"
DROPPED_NAME = "urn:dev:DVNUUID:%s:droppedReadings" % UUID


def _by_sockets(heap, after=0):
    """In use after collect, per number of sockets open when sampled, from the samples taken
    after cycle `after`. The first sample still holds start-up garbage and is left out."""
    groups = {}
    for h in heap[1:]:
        if h[0] > after:
            groups.setdefault(h[3], []).append(h[1])
    return groups


def _first_cycle(out_lines, outcome):
    """The cycle of the first uplink answered with `outcome` ("400 malformed"), or None."""
    for x in out_lines:
        if x.startswith("[kpn] uplink ") and " -> " in x:
            if x.split(" -> ", 1)[1].split(" (", 1)[0] == outcome:
                return int(x[len("[kpn] uplink ") :].split(":", 1)[0])
    return None


def picow_full_cycle():
    """(bytes, chain, where the figure came from): KPN_PICOW_FULL_CYCLE, else what `make bench`
    last wrote to build/bench/results.json, else PICOW_FULL_CYCLE_BYTES."""
    value = os.environ.get("KPN_PICOW_FULL_CYCLE", "").strip()
    if value:
        return int(value), PICOW_CHAIN, "KPN_PICOW_FULL_CYCLE"
    try:
        results = json.loads(BENCH_RESULTS.read_text())
    except (OSError, ValueError):
        results = {}
    pico = results.get("full_cycle_https", {}).get("pico_w", {})
    if isinstance(pico.get("min_heap_bytes"), int):
        written = time.strftime("%Y-%m-%d %H:%M", time.localtime(BENCH_RESULTS.stat().st_mtime))
        source = "%s full_cycle_https.pico_w.min_heap_bytes (written %s)" % (
            BENCH_RESULTS.relative_to(ROOT),
            written,
        )
        return pico["min_heap_bytes"], pico.get("worst_chain") or PICOW_CHAIN, source
    return PICOW_FULL_CYCLE_BYTES, PICOW_CHAIN, "PICOW_FULL_CYCLE_BYTES in this file (2026-12-08)"


def _picow_env(tmp_path, config):
    """MICROPYPATH as the bench gives the Pico W model: the stand-ins and the board as .mpy,
    the armv6m tree of lib/ and boards/, firmware/, and the port's frozen modules."""
    board = build_board_mpy(tmp_path / "board_mpy", PICOW_ARCH)
    tree = ROOT / "build" / "mpy" / PICOW_ARCH
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([str(board), str(tree), str(ROOT / "firmware"), ".frozen"])
    env["KPN_CONFIG"] = str(config)
    env["KPN_CRASHTEST_PER_CYCLE"] = str(PER_CYCLE)
    env["KPN_CRASHTEST_HEAP_EVERY"] = str(PICOW_EVERY)
    env["KPN_CRASHTEST_MEM_INFO"] = "1"
    return env


def _tls_setup_out_of_heap(line):
    """True for the uplink line of a TLS set-up that found no room for its buffers: the send
    was answered "no answer retry", so its readings stay queued."""
    return line.startswith("[kpn] uplink ") and line.endswith(
        "-> no answer retry (TLS setup failed: [Errno 12] ENOMEM)"
    )


def _largest_holes(out_lines):
    """(cycle, bytes, sockets open) per heap sample: the largest free block after collect
    (mem_info's "max free sz"), the most the next connection's TLS buffers can get in one
    piece."""
    out, sample = [], None
    for x in out_lines:
        if x.startswith("H "):
            sample = x.split()
        elif "max free sz:" in x and sample is not None:
            out.append((int(sample[1]), int(x.rsplit(":", 1)[1]) * GC_BLOCK, int(sample[4])))
            sample = None
    return out


@pytest.mark.skipif(
    runtimes.picow32() is None,
    reason="MICROPYTHON32 is unset: no Pico W model (32-bit unix port, mbedTLS in the GC heap)"
    " to run on; build it with ../shared/tools/micropython32/build.sh (see its README)",
)
@pytest.mark.parametrize(
    "heap",
    [
        pytest.param(
            "target",
            marks=pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason="issue 15, open: at the full cycle + 8 KB a reconnect's 16 KB mbedTLS"
                " record buffer finds no hole that large (the largest free block after collect"
                " is 10-24 KB with about 50 KB free), so TLS setup fails with ENOMEM; strict, so"
                " the day it passes this must change",
            ),
        ),
        "roomy",
    ],
)
def test_firmware_ten_thousand_cycles_picow_model_over_https(tmp_path, mpy_built, capsys, heap):
    full_cycle, chain_name, source = picow_full_cycle()
    chain_name = os.environ.get("KPN_LONGRUN_CHAIN", chain_name)
    # target: what issue 15 asks for. roomy: a heap where the whole run passes today (it does
    # from 168 KB, measured 2026-12-07), so the no-loss and flat-heap checks hold on this model.
    heapsize = full_cycle + PICOW_MARGIN if heap == "target" else PICOW_ROOMY
    chain = pki.make_chain(chain_name, tmp_path / "pki")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(chain.cert), str(chain.key))
    shutil.copy(chain.ca_der, tmp_path / "ca.der")  # the device trusts only the root, as DER
    binary = runtimes.picow32().binary
    if heap == "target":
        why = "full cycle %d B + %d B, the full cycle from %s" % (full_cycle, PICOW_MARGIN, source)
    else:
        why = "the roomy case (KPN_PICOW_ROOMY)"
    with capsys.disabled():  # first, so that a run that fails early still says what it ran
        print(
            "\nfirmware long run, Pico W model (%s: mbedTLS in the GC heap; %s .mpy; verified "
            "HTTPS, %s chain; %d requests a connection): -X heapsize=%d = %s"
            % (binary, PICOW_ARCH, chain_name, KEEPALIVE_REQUESTS, heapsize, why)
        )
    emulator = new_emulator()
    front = FrontServer(
        emulator, script=mixed_answers, ssl_context=tls, keepalive_requests=KEEPALIVE_REQUESTS
    )
    with front:
        # timeout_s 5: a deadline a handshake meets even with the machine's other cores busy
        config = longrun_config(
            tmp_path, front.url, ca_file="ca.der", outbox_max_bytes=1 << 18, timeout_s=5
        )
        cmd = firmware_cmd(heapsize, binary)
        text, elapsed, got = run_polling(tmp_path, cmd, _picow_env(tmp_path, config), emulator)
    delivered = got.seqs()
    out_lines = lines(text)
    heap = heap_samples(out_lines, PICOW_EVERY)
    # Warm-up: until a 400 and a 503 have been answered once, their paths have not loaded what
    # they keep (a step of a few KB, once); the samples after it are compared.
    firsts = [_first_cycle(out_lines, o) for o in ("400 malformed", "503 retry")]
    warm = CYCLES if None in firsts else max(firsts)
    groups = _by_sockets(heap, after=warm)
    # Connected: a kept-alive TLS socket open, the steady state (its mbedTLS buffers, about
    # 23 KB, in the heap). Idle: no socket, after a close or backing off with a backlog on flash,
    # where the outbox's list of segments grows with the backlog up to its bound: there the
    # least of the early and of the late samples are compared.
    connected, idle = groups.get(1, []), groups.get(0, [])
    early, late = early_late(connected)
    idle_early, idle_late = early_late(idle, mean=False)
    holes = _largest_holes(out_lines)
    # Where no socket is open, the next connection needs its 16 KB record buffer in one piece.
    unconnected = [h for h in holes if h[2] == 0 and h[0] > warm] or holes
    smallest_hole = min(unconnected, key=lambda h: h[1])
    outcomes = uplink_outcomes(out_lines)
    queued, box = queued_seqs(tmp_path / "outbox")
    dead = [int(r["v"]) for r in box.dead_letters() if r["n"] == "seq"]
    everything = list(range(CYCLES * PER_CYCLE))
    seen = collections.Counter(delivered + dead + queued)
    missing = sorted(set(everything) - set(seen))
    duplicates = sorted(n for n, c in seen.items() if c > 1)
    # A retry the front end did not script (a deadline passed) is the only way a reading can
    # arrive twice: the answer to a pack the emulator had stored was lost.
    unscripted = {k: v for k, v in outcomes.items() if "retry" in k and k != "503 retry"}
    failures = failed_cycles(out_lines)
    with capsys.disabled():
        print(
            "  %d cycles, %d readings in %.1f s (%.2f ms a cycle); uplinks %s, backing off in "
            "%d cycles; %d TLS connections (%d handshakes) for %d requests\n"
            "  in use after collect: first sample %d B with %d sockets open; after the warm-up "
            "(to cycle %d: first 400 and 503 answered) %s;\n"
            "  connected early mean %.0f, late mean %.0f; idle early least %d, late least %d\n"
            "  largest free block after collect: first %d B, least with no socket open %d B "
            "(cycle %d), last %d B\n"
            "  delivered %d, dead-lettered %d, queued %d, missing %d (dropped by the outbox's "
            "bound: %d reported by the device, %d not yet), duplicates %d %s; "
            "MemoryError or ENOMEM in %d lines (TLS set-ups short of heap, retried: %d), "
            "failed cycles %d"
            % (
                CYCLES,
                CYCLES * PER_CYCLE,
                elapsed,
                1000 * elapsed / CYCLES,
                dict(sorted(outcomes.items())),
                sum(1 for x in out_lines if ": backing off after " in x),
                front.connections,
                front.handshakes,
                front.requests,
                heap[0][1],
                heap[0][3],
                warm,
                "; ".join(
                    "%d socket(s): %d samples, first %d, last %d, min %d, max %d, queued %d..%d"
                    % (
                        k,
                        len(g),
                        g[0],
                        g[-1],
                        min(g),
                        max(g),
                        min(h[4] for h in heap[1:] if h[3] == k and h[0] > warm),
                        max(h[4] for h in heap[1:] if h[3] == k and h[0] > warm),
                    )
                    for k, g in sorted(groups.items())
                ),
                early or -1,
                late or -1,
                idle_early or -1,
                idle_late or -1,
                holes[0][1],
                smallest_hole[1],
                smallest_hole[0],
                holes[-1][1],
                len(delivered),
                len(dead),
                len(queued),
                len(missing),
                sum(int(v) for v in got.values(DROPPED_NAME)),
                box.dropped,
                len(duplicates),
                duplicates[:10],
                sum(1 for x in out_lines if "MemoryError" in x or "ENOMEM" in x),
                sum(1 for x in out_lines if _tls_setup_out_of_heap(x)),
                len(failures),
            )
        )
    assert "[boot] done after %d cycles" % CYCLES in out_lines
    # Out of heap is a MemoryError in Python, and ENOMEM where mbedTLS's allocation failed.
    oom = [x for x in out_lines if "MemoryError" in x or "ENOMEM" in x]
    # In the roomy heap one case is survived, not forbidden: a reconnect's 16 KB record buffer
    # that finds no hole (fragmentation between TLS connections, issue 15, open). Seen at
    # 192 KB: none in most runs, 1 in about 1,500 handshakes, 3 in 1,237 once issue 20's code
    # had moved the layout. The send reports "no answer retry", the reading stays on flash and
    # goes in a later cycle: the checks below prove nothing is lost. Any other out-of-heap
    # line, or more than one such set-up in 200 handshakes (a rate that would say the heap no
    # longer fits, not that a hole was missed), fails.
    survived = [x for x in oom if heap == "roomy" and _tls_setup_out_of_heap(x)]
    oom = [x for x in oom if x not in survived]
    assert not oom, "%d out-of-heap lines: %s" % (len(oom), oom[:5])
    assert len(survived) <= front.handshakes // 200, (len(survived), survived[:5])
    failures = [x for x in failures if x not in survived]
    assert not failures, "%d failed cycles: %s" % (len(failures), failures[:3])
    # Flat: connected, early against late as in the runs above; idle, the least early against
    # the least late; each state's samples within 2 KB of each other. A socket never stays open
    # beside the kept-alive one.
    assert set(groups) <= {0, 1}, sorted(groups)
    assert early is not None and late - early < 256, (early, late, connected)
    assert idle_early is None or idle_late - idle_early < 256, (idle_early, idle_late, idle)
    for k, used in groups.items():
        assert max(used) - min(used) < 2048, (k, used)
    # The run did what it is for: handshakes all along, the backlog, both error classes.
    assert front.handshakes > CYCLES // (2 * KEEPALIVE_REQUESTS), front.handshakes
    assert {"200 accepted", "400 malformed", "503 retry"} <= set(outcomes), outcomes
    # Nothing lost: every reading appended, and each one delivered, dead-lettered or queued.
    assert sorted(appended(out_lines)) == everything
    assert not missing, "%d readings lost: %s" % (len(missing), missing[:10])
    assert set(seen) <= set(everything), sorted(set(seen) - set(everything))[:10]
    assert box.dropped == 0
    assert len(dead) == box.dead_count and dead
    assert not duplicates or unscripted, "duplicates without a lost answer: %s" % duplicates[:10]
