"""Reading the outbox back from flash: frames (checked, a torn or corrupt one skipped), records,
the `Queued` view a flush writes its pack from, and removing what was delivered or refused.

Loaded by kpnthings.outbox at the first flush and unloaded when the device rests before a long
wait (Outbox.rest): a resting device only appends, and appending is all the resident module
does. Every file is opened through kpnthings.outbox's seam (`_open`, `os`).
"""

import struct

from kpnthings import outbox as _box
from kpnthings.compat import const, ticks_diff
from kpnthings.outbox import _HDR, crc32

# The frame's constants, as in kpnthings.outbox (const: compiled in, no name held on the board)
_MAGIC = const(0xA5)
_HDR_LEN = const(7)
_MAX_PAYLOAD = const(1100)


def decode_record(payload):
    """The inverse of encode_record; raises ValueError on a payload it cannot read."""
    flags = payload[0]
    kind = flags & 0x0F
    if kind > 5:
        raise ValueError("unknown value kind")
    pos = 2 + payload[1]
    rec = {}
    rec["n"] = bytes(payload[2:pos]).decode()
    if flags & 0x10:
        end = pos + 1 + payload[pos]
        rec["u"] = bytes(payload[pos + 1 : end]).decode()
        pos = end
    if flags & 0x20:
        rec["t"] = struct.unpack("<q", payload[pos : pos + 8])[0]
        pos += 8
    if flags & 0x40:
        rec["k"], rec["b"] = struct.unpack("<qI", payload[pos : pos + 12])
        pos += 12
    if kind == 0:
        rec["v"] = struct.unpack("<d", payload[pos : pos + 8])[0]
    elif kind == 1:
        rec["v"] = struct.unpack("<q", payload[pos : pos + 8])[0]
    elif kind < 4:
        rec["vb"] = kind == 3
    else:
        n = struct.unpack("<H", payload[pos : pos + 2])[0]
        raw = bytes(payload[pos + 2 : pos + 2 + n])
        if kind == 4:
            rec["vs"] = raw.decode()
        else:
            rec["vd"] = raw
    return rec


def _frame_at(f, off, size):
    """The first valid frame of open file f at or after `off` (below `size`): (start, next,
    payload), or None. Corrupt or torn bytes are skipped by searching for the next magic byte
    whose frame checks out."""
    while off + _HDR_LEN <= size:
        f.seek(off)
        hdr = f.read(_HDR_LEN)
        if len(hdr) == _HDR_LEN and hdr[0] == _MAGIC:
            n, crc = struct.unpack(_HDR, hdr)[1:]
            nxt = off + _HDR_LEN + n
            if 0 < n <= _MAX_PAYLOAD and nxt <= size:
                payload = f.read(n)
                if len(payload) == n and crc32(payload) == crc:
                    return off, nxt, payload
        # Resynchronise: jump to the next magic byte in what we have read, else past it.
        i = hdr.find(bytes((_MAGIC,)), 1)
        off += i if i > 0 else max(1, len(hdr))
    return None


def scan(path, off, size, max_count, with_payload):
    """Read valid frames of one file from `off`: a list of (start, next, payload or None).

    Stops after max_count frames or at `size`.
    """
    out = []
    if max_count <= 0:
        return out
    try:
        f = _box._open(path, "rb")
    except OSError:
        return out
    try:
        while len(out) < max_count:
            fr = _frame_at(f, off, size)
            if fr is None:
                break
            off = fr[1]
            out.append(fr if with_payload else (fr[0], fr[1], None))
    finally:
        f.close()
    return out


def _reading(payload, dating=None):
    try:
        rec = decode_record(payload)
    except (ValueError, IndexError, UnicodeError, TypeError):
        # A frame whose checksum holds but whose payload is not a record (written by an
        # incompatible version): deliver a marker so ack counts stay aligned.
        return {"n": "corruptRecord", "vb": True}
    k = rec.pop("k", None)
    b = rec.pop("b", None)
    if k is None:
        return rec  # timed by NTP, or never to be timed
    if dating is not None and b == dating[0]:
        # Taken in this boot before NTP set the clock (or an RTC's time): its true time is the
        # clock's less the ticks since (ticks_diff handles the wrap: on the boards' ports its
        # period is 2**30 ms, so up to 6 days; older than that, a reading cannot be dated).
        age = ticks_diff(dating[2], k)
        if 0 <= age < 1 << 29:
            rec["t"] = dating[1] - age // 1000
            rec["q"] = dating[3]  # 1: from ticks and NTP's time, 2: and an RTC's
            return rec
    if "t" in rec:
        rec["q"] = 2  # an RTC's time, from an earlier boot: nothing to date it by now
    return rec


class Queued:
    """The undelivered readings, oldest first, read from flash one at a time as they are asked
    for: queued[i] in rising i (asking for an earlier one reads again from the head), IndexError
    past the last; len() is the outbox's. A flush that walks a backlog of thousands holds one
    decoded reading at a time; close() when done.

    A reading whose time did not come from a clock NTP had set says so in "q": 1 when it was
    dated from its ticks once NTP set the clock, 2 when its time is an RTC's (kept through a
    reset); one with no time has no "t". `dating` keeps, for no time, 1 and 2, the index of the
    first reading read so far of that kind (len + 1 if none): a flush knows from it how the
    times of the readings in its pack were obtained (kpnthings.flush)."""

    def __init__(self, box):
        self._box = box
        self._f = None
        n = len(box) + 1
        self.dating = [n, n, n]
        self._rewind()

    def _rewind(self):
        self.close()
        self._seg = 0  # segment index, and the offset of the next frame in it
        self._off = self._box._head_off
        self._next = 0  # index of the reading at the cursor
        self._last = None  # (index, reading) decoded last

    def __len__(self):
        return len(self._box)

    def __getitem__(self, i):
        last = self._last
        if last is not None and last[0] == i:
            return last[1]
        if i < self._next:
            self._rewind()
        box = self._box
        while self._seg < len(box._nums):
            if self._f is None:
                try:
                    self._f = _box._open(box._seg_path(box._nums[self._seg]), "rb")
                except OSError:
                    self._seg, self._off = self._seg + 1, 0
                    continue
            fr = _frame_at(self._f, self._off, box._ends[self._seg])
            if fr is None:
                self.close()
                self._seg, self._off = self._seg + 1, 0
                continue
            self._off = fr[1]
            self._next += 1
            if self._next - 1 == i:
                rec = _reading(fr[2], box.dating)
                # 0: no time, 1: dated from ticks, 2: an RTC's time; 3, NTP's, is not kept
                q = rec.get("q", 0 if "t" not in rec else 3)
                if q < 3 and i < self.dating[q]:
                    self.dating[q] = i
                self._last = (i, rec)
                return rec
        raise IndexError(i)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def walk(box, max_count, with_payload):
    """Frames from the head: a list of (segment index, start, next, payload)."""
    out = []
    for i in range(len(box._nums)):
        if len(out) >= max_count:
            break
        off = box._head_off if i == 0 else 0
        path = box._seg_path(box._nums[i])
        for fr in scan(path, off, box._ends[i], max_count - len(out), with_payload):
            out.append((i, fr[0], fr[1], fr[2]))
    return out


def consume(box, count, dead):
    """Remove the oldest `count` readings (Outbox.ack), into the dead-letter store when
    `dead` (Outbox.dead_letter)."""
    # Readings dropped for the bound since the last peek were among the peeked ones: they
    # are gone already, and acking `count` from the new head would remove unsent readings.
    count -= box._lost_since_peek
    box._lost_since_peek = 0
    if count <= 0:
        return
    if dead:
        frames = walk(box, count, True)  # their payloads go to the dead-letter store
        if not frames:
            return
        from kpnthings import outbox_dead, unload

        try:
            outbox_dead.store_dead(box, frames)
        finally:
            unload("outbox_dead")  # refused packs are rare
        box.dead_count += len(frames)
        seg, nxt = frames[-1][0], frames[-1][2]
        passed = sum(1 for fr in frames if fr[0] == seg)
    else:
        last = _skip(box, count)
        if last is None:
            return
        seg, nxt, passed = last
    if seg == 0:
        passed += box._head_idx
    box._advance_to(seg, nxt, passed)


def _skip(box, count):
    """Walk `count` frames from the head, keeping none: (segment index of the last one, the
    offset after it, frames walked in that segment), or None. An ack after a pack of a
    backlog then costs no list of its frames."""
    last = None
    walked = 0
    for i in range(len(box._nums)):
        if walked >= count:
            break
        try:
            f = _box._open(box._seg_path(box._nums[i]), "rb")
        except OSError:
            continue
        off = box._head_off if i == 0 else 0
        passed = 0
        try:
            while walked < count:
                fr = _frame_at(f, off, box._ends[i])
                if fr is None:
                    break
                off = fr[1]
                walked += 1
                passed += 1
                last = (i, off, passed)
        finally:
            f.close()
    return last
