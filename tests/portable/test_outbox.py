"""The persistent outbox: order, persistence, torn and corrupt frames, the bound, compaction."""

import binascii
import os

from _support import raises
from kpnthings import outbox, outbox_encode, outbox_read
from kpnthings.outbox import Outbox, OutboxError


def _tmpdir():
    path = "/tmp/kpn-outbox-%s" % binascii.hexlify(os.urandom(6)).decode()
    os.mkdir(path)
    return path


def _rmtree(path):
    for name in os.listdir(path):
        os.remove(path + "/" + name)
    os.rmdir(path)


def _rec(i, t=None):
    r = {"n": "r%d" % i, "v": i}
    if t is not None:
        r["t"] = t
    return r


def _names(records):
    return [r["n"] for r in records]


def _segments(path):
    return sorted(n for n in os.listdir(path) if n.startswith("q"))


def _size(path):
    return os.stat(path)[6]


def test_records_round_trip_exactly():
    records = [
        {"n": "temperature", "u": "Cel", "v": 21.5, "t": 1700000000},
        {"n": "ratio", "v": 9.7},
        {"n": "tiny", "v": -1.25e-30},
        {"n": "counter", "v": -(2**40)},
        {"n": "zero", "v": 0},
        {"n": "door", "vb": True},
        {"n": "door", "vb": False},
        {"n": "msg", "vs": 'h\u00e9 "quoted"'},
        {"n": "blob", "vd": b"\x00hoi\xff"},
        {"n": "empty", "vs": ""},
    ]
    for r in records:
        back = outbox_read.decode_record(outbox_encode.encode_record(r))
        assert back == r, (back, r)
        for key in ("v", "vb", "vs", "vd"):
            if key in r:
                assert type(back[key]) is type(r[key]), key


def test_invalid_records_are_refused_naming_the_field():
    bad = [
        ({"v": 1}, "n"),
        ({"n": "", "v": 1}, "n"),
        ({"n": "x"}, "exactly one"),
        ({"n": "x", "v": 1, "vs": "a"}, "exactly one"),
        ({"n": "x", "v": "1"}, "field v"),
        ({"n": "x", "v": True}, "field v"),
        ({"n": "x", "vb": 1}, "field vb"),
        ({"n": "x", "vs": 3}, "field vs"),
        ({"n": "x", "vd": "aG9p"}, "field vd"),
        ({"n": "x", "v": 1, "t": 1.5}, "field t"),
        ({"n": "x", "v": 1, "u": 5}, "field u"),
    ]
    for record, needle in bad:
        e = raises(OutboxError, outbox_encode.encode_record, record)
        assert needle in str(e), (record, str(e))


def test_crc_matches_binascii_and_the_pure_fallback():
    for data in (b"", b"a", b"123456789", bytes(range(256))):
        assert outbox.crc32_py(data) == binascii.crc32(data) & 0xFFFFFFFF
    assert outbox.crc32_py(b"123456789") == 0xCBF43926  # the CRC-32 check value


def test_append_peek_ack_in_order():
    d = _tmpdir()
    try:
        q = Outbox(d)
        assert len(q) == 0
        assert q.peek(5) == []
        for i in range(10):
            q.append(_rec(i, 1700000000 + i))
        assert len(q) == 10
        assert _names(q.peek(3)) == ["r0", "r1", "r2"]
        assert q.peek(1)[0] == {"n": "r0", "v": 0, "t": 1700000000}
        q.ack(3)
        assert len(q) == 7
        assert _names(q.peek(100)) == ["r%d" % i for i in range(3, 10)]
        q.ack(0)
        assert len(q) == 7
        q.ack(100)  # more than queued: everything goes, nothing breaks
        assert len(q) == 0
        assert q.peek(5) == []
    finally:
        _rmtree(d)


def test_reopen_keeps_queue_head_and_counters():
    d = _tmpdir()
    try:
        q = Outbox(d)
        for i in range(20):
            q.append(_rec(i))
        q.ack(5)
        q.dead_letter(2)
        q = Outbox(d)
        assert len(q) == 13
        assert _names(q.peek(2)) == ["r7", "r8"]
        assert q.dead_count == 2
        q.append(_rec(20))
        q = Outbox(d)
        assert _names(q.peek(100)) == ["r%d" % i for i in range(7, 21)]
    finally:
        _rmtree(d)


def test_torn_tail_is_skipped_and_appends_go_to_a_new_segment():
    d = _tmpdir()
    try:
        q = Outbox(d)
        for i in range(3):
            q.append(_rec(i))
        seg = d + "/" + _segments(d)[-1]
        whole = outbox.frame(outbox_encode.encode_record(_rec(3)))
        with open(seg, "ab") as f:
            f.write(whole[:-4])  # a power cut mid-append
        q = Outbox(d)
        assert len(q) == 3
        q.append(_rec(4))
        assert len(_segments(d)) == 2  # nothing is appended after garbage
        q = Outbox(d)
        assert _names(q.peek(10)) == ["r0", "r1", "r2", "r4"]
        q.ack(4)
        assert len(q) == 0
        assert _segments(d) == []
    finally:
        _rmtree(d)


def test_corrupt_record_is_skipped_the_rest_survive():
    d = _tmpdir()
    try:
        q = Outbox(d)
        for i in range(5):
            q.append({"n": "r%d" % i, "vs": "payload-%d" % i})
        seg = d + "/" + _segments(d)[0]
        with open(seg, "rb") as f:
            data = bytearray(f.read())
        flen = len(data) // 5
        data[2 * flen + 12] ^= 0x40  # one flipped bit in the third record's payload
        with open(seg, "wb") as f:
            f.write(data)
        q = Outbox(d)
        assert _names(q.peek(10)) == ["r0", "r1", "r3", "r4"]
        assert len(q) == 4
        q.ack(3)
        assert _names(q.peek(10)) == ["r4"]
        # Garbage in the middle of the header area: resynchronises on the next good frame.
        with open(seg, "r+b") as f:
            f.seek(0)
            f.write(b"\xa5\xa5\x00\xff\xa5")
        q = Outbox(d)
        assert _names(q.peek(10)) == ["r4"]
    finally:
        _rmtree(d)


def test_garbage_files_never_stop_the_open():
    d = _tmpdir()
    try:
        with open(d + "/commit", "wb") as f:
            f.write(b"not a commit record")
        with open(d + "/q0.log", "wb") as f:
            f.write(b"\xa5\xff\xff" + bytes(40))
        with open(d + "/qx.log", "wb") as f:
            f.write(b"ignored")
        q = Outbox(d)
        assert len(q) == 0
        q.append(_rec(1))
        assert _names(Outbox(d).peek(5)) == ["r1"]
    finally:
        _rmtree(d)


def test_bound_drops_oldest_whole_segments_and_counts_them():
    d = _tmpdir()
    try:
        q = Outbox(d, max_bytes=2048)
        total = 600
        for i in range(total):
            q.append(_rec(i))
            assert q.size_bytes() <= 2048
        kept = q.peek(1000)
        assert len(kept) == len(q)
        assert q.dropped > 0
        assert q.dropped + len(q) == total  # every reading is either queued or counted
        # What stays is the newest, contiguous run.
        assert _names(kept) == ["r%d" % i for i in range(q.dropped, total)]
        q = Outbox(d, max_bytes=2048)
        assert q.dropped + len(q) == total
        n = q.dropped
        q.append(_rec(total))  # more may be dropped while the report is in flight
        q.clear_dropped(n)
        assert q.dropped == Outbox(d, max_bytes=2048).dropped
        assert q.dropped + n + len(q) == total + 1
    finally:
        _rmtree(d)


def test_dead_letter_store_keeps_rejected_readings_within_its_bound():
    d = _tmpdir()
    try:
        q = Outbox(d, dead_max_bytes=400)
        for i in range(60):
            q.append({"n": "r%d" % i, "vs": "x" * 10})
        q.dead_letter(2)
        assert _names(q.peek(1)) == ["r2"]
        assert _names(q.dead_letters()) == ["r0", "r1"]
        for _ in range(29):
            q.dead_letter(2)
        assert len(q) == 0
        assert q.dead_count == 60
        dead = q.dead_letters()
        assert 0 < len(dead) < 60
        assert _names(dead)[-1] == "r59"  # the newest are kept
        size = 0
        for name in ("dead.log", "dead.old"):
            try:
                size += _size(d + "/" + name)
            except OSError:
                pass
        assert size <= 400
    finally:
        _rmtree(d)


def test_compaction_deletes_delivered_segments():
    d = _tmpdir()
    try:
        q = Outbox(d, max_bytes=4096)
        for cycle in range(30):
            for i in range(20):
                q.append(_rec(cycle * 20 + i))
            assert len(_segments(d)) <= 8
            q.ack(15)
        assert len(q) == 30 * 5
        assert q.dropped == 0
        # Files hold the undelivered readings plus at most one part-delivered segment.
        frame_len = len(outbox.frame(outbox_encode.encode_record(_rec(100))))
        on_flash = sum(_size(d + "/" + n) for n in _segments(d))
        assert on_flash <= len(q) * frame_len + 512, on_flash
        q.ack(len(q))
        assert _segments(d) == []
        q.append(_rec(1))
        assert len(_segments(d)) == 1
    finally:
        _rmtree(d)


def test_a_crash_before_deleting_a_segment_is_finished_at_open():
    d = _tmpdir()
    try:
        q = Outbox(d, max_bytes=4096)
        for i in range(60):
            q.append(_rec(i))
        first = _segments(d)[0]
        with open(d + "/" + first, "rb") as f:
            keep = f.read()
        q.ack(40)
        assert first not in _segments(d)
        with open(d + "/" + first, "wb") as f:  # as if power failed before the delete
            f.write(keep)
        q = Outbox(d, max_bytes=4096)
        assert first not in _segments(d)
        assert _names(q.peek(1)) == ["r40"]
        assert len(q) == 20
    finally:
        _rmtree(d)


def test_commit_survives_a_crash_between_write_and_rename():
    d = _tmpdir()
    try:
        q = Outbox(d)
        for i in range(10):
            q.append(_rec(i))
        q.ack(2)
        with open(d + "/commit", "rb") as f:
            old = f.read()
        q.ack(3)
        os.rename(d + "/commit", d + "/commit.tmp")  # the newer state only in the temp file
        with open(d + "/commit", "wb") as f:
            f.write(old)
        assert _names(Outbox(d).peek(1)) == ["r5"]
        os.remove(d + "/commit")  # FAT: rename removed the target, then the power failed
        assert _names(Outbox(d).peek(1)) == ["r5"]
        with open(d + "/commit.tmp", "wb") as f:  # a torn temp file next to a good commit
            f.write(old[:7])
        with open(d + "/commit", "wb") as f:
            f.write(old)
        assert _names(Outbox(d).peek(1)) == ["r2"]
    finally:
        _rmtree(d)


class _Recorder:
    """Stands in for the module's `open` and counts what each call writes."""

    def __init__(self, real):
        self.real = real
        self.calls = []

    def __call__(self, path, mode="r"):
        f = self.real(path, mode)
        if "r" in mode and "+" not in mode:
            return f
        rec = [path, mode, 0]
        self.calls.append(rec)
        return _CountingFile(f, rec)


class _CountingFile:
    def __init__(self, f, rec):
        self.f = f
        self.rec = rec

    def write(self, data):
        self.rec[2] += len(data)
        return self.f.write(data)

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_append_writes_one_frame_and_never_rewrites_the_queue():
    d = _tmpdir()
    try:
        q = Outbox(d, max_bytes=8192)
        for i in range(100):
            q.append(_rec(i))
        rec = _Recorder(open)
        outbox.open = rec  # module globals come before builtins, on both runtimes
        try:
            q.append(_rec(100))
        finally:
            del outbox.open
        frame_len = len(outbox.frame(outbox_encode.encode_record(_rec(100))))
        assert len(rec.calls) == 1, rec.calls
        path, mode, written = rec.calls[0]
        assert mode == "ab"
        assert path.endswith(".log")
        assert written == frame_len
    finally:
        _rmtree(d)


def test_drops_between_peek_and_ack_never_remove_unsent_readings():
    d = _tmpdir()
    try:
        q = Outbox(d, max_bytes=2048)
        i = 0
        while q.dropped == 0:  # fill to the bound
            q.append(_rec(i))
            i += 1
        q.clear_dropped(q.dropped)
        sent = _names(q.peek(10))
        before = len(q)
        while q.dropped == 0:  # appends during the send push the peeked ones out
            q.append(_rec(i))
            i += 1
        assert len(q) <= before
        q.ack(len(sent))
        kept = _names(q.peek(1000))
        # Whatever was neither sent nor dropped is still queued, in order, up to the newest.
        first_kept = int(kept[0][1:])
        assert kept == ["r%d" % k for k in range(first_kept, i)]
        assert first_kept == max(int(sent[-1][1:]) + 1, q.dropped + int(sent[0][1:]))
    finally:
        _rmtree(d)
