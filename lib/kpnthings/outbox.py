"""Persistent outbox: every reading is stored on flash before a send is tried.

A reading leaves the outbox only when KPN accepts it (`ack`) or rejects it as malformed
(`dead_letter`). The queue survives resets, power cuts and deep sleep; it is bounded in bytes and
counts what it had to drop, so a loss is never silent.

On-flash format (all integers little-endian), in `dir_path`:
- `q<N>.log` segment files, N increasing. A segment is a sequence of frames:
  `A5 | length:u16 | crc32(payload):u32 | payload`. A frame that fails any check (magic, length,
  crc, cut short) is skipped by scanning forward for the next valid frame, so a torn tail or a
  flipped bit costs that reading only and never stops the boot. Appends go to the newest segment;
  a segment with a torn tail is sealed and appends start a new one.
- payload: `flags:u8 | len:u8 name | [len:u8 unit] | [t:i64] | [k:i64 b:u32] | value`; flags
  bits 0-3 give the value kind (0 v float f64, 1 v int i64, 2 vb false, 3 vb true, 4 vs, 5 vd;
  vs and vd as `len:u16 bytes`, vs in utf-8), bit 4 a unit, bit 5 an absolute time `t`, bit 6
  the ticks_ms `k` and boot identity `b` it was taken at: without a time, so that it can be
  dated once the clock is set in that boot (kpnthings.outbox_read); with one, to say that the
  time came from an RTC kept through a reset, not from NTP (docs/resilience.md).
- `commit`: `b"KOB1" | gen | head_seg | head_off | dropped | dead | crc32` (u32 each): the
  position of the oldest undelivered frame and two counters. Written to `commit.tmp`, then
  renamed over `commit`; at open the valid copy with the highest `gen` wins, which also covers
  filesystems whose rename removes the target first (FAT).
- `dead.log`, `dead.old`: the dead-letter store, same framing, each at most dead_max_bytes / 2.

Crash consistency: an append is one write of one frame; acknowledging, dead-lettering and dropping
first write the commit file and only then delete segments that lie wholly before the head (a
crash in between leaves files the next open deletes). Delivery is at-least-once: a crash after a
send but before its `ack` commit sends that batch again.

Bound: segments are at most max_bytes / 8 (512..4096 bytes). When an append would take the
queue past max_bytes, the oldest segment is dropped whole and its undelivered readings are added
to `dropped` (persisted) until the caller reports them and calls `clear_dropped`.
"""

import os
import struct

from kpnthings.compat import const

try:
    from binascii import crc32 as _crc32
except ImportError:  # a port built without MICROPY_PY_BINASCII_CRC32
    _crc32 = None

_MAGIC = const(0xA5)
_HDR = "<BHI"
_HDR_LEN = const(7)
_MAX_PAYLOAD = const(1100)  # a frame claiming more is corrupt, whatever the instance's own limit
_COMMIT_FMT = "<4sIIIII"
_COMMIT_MAGIC = b"KOB1"
# Bounds of the queue and of the dead letters on flash (config outbox_max_bytes, dead_max_bytes)
_DEFAULT_MAX_BYTES = const(32768)
_DEFAULT_DEAD_BYTES = const(8192)


def crc32_py(data):
    """Standard CRC-32 (as zlib) in pure Python, for ports built without binascii.crc32."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def crc32(data):
    """Standard CRC-32 (as zlib), from binascii when the port has it."""
    if _crc32 is None:
        return crc32_py(data)
    return _crc32(data) & 0xFFFFFFFF


class OutboxError(ValueError):
    """A record the outbox cannot store; the message names the field."""


def frame(payload):
    """Length + checksum framing around one payload."""
    return struct.pack(_HDR, _MAGIC, len(payload), crc32(payload)) + payload


def _open(path, mode):
    # Every file the outbox's modules (outbox_open, outbox_dead) open goes through here, and
    # every os call through this module's `os`: one seam, which the power-cut tests replace
    # with a simulated filesystem.
    return open(path, mode)


def _file_size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass  # already gone: a crash between commit and delete, seen again at open


class Outbox:
    """A bounded, crash-consistent FIFO of readings on the flash filesystem."""

    def __init__(self, dir_path, max_bytes=None, dead_max_bytes=None):
        # None: the defaults, as when config.json leaves outbox_max_bytes or dead_max_bytes out
        if max_bytes is None:
            max_bytes = _DEFAULT_MAX_BYTES
        if dead_max_bytes is None:
            dead_max_bytes = _DEFAULT_DEAD_BYTES
        if max_bytes < 2048:
            raise OutboxError("max_bytes must be at least 2048, got %d" % max_bytes)
        if dead_max_bytes < 0:
            raise OutboxError("dead_max_bytes must not be negative")
        self._dir = dir_path.rstrip("/") or "/"
        self._max = max_bytes
        self._seg_max = max(512, min(4096, max_bytes // 8))
        self._dead_max = dead_max_bytes
        self._lost_since_peek = 0
        # (boot, unix now, ticks_ms now, 1 or 2: the clock set by NTP or kept by the RTC)
        # while a flush reads (outbox_read)
        self.dating = None
        # The state outbox_open.load() reads from flash: the commit record's fields, and
        # parallel lists, oldest first, of segment number, valid end offset and frame count.
        self._gen = self._head_seg = self._head_off = self._head_idx = self._next = 0
        self.dropped = self.dead_count = 0
        self._nums, self._ends, self._counts = [], [], []
        self._tail_open = False
        from kpnthings import outbox_open, unload

        try:
            outbox_open.makedirs(self._dir)
            outbox_open.load(self)
        finally:
            unload("outbox_open")  # once per boot; outbox_read stays for the first flush

    # ---- paths and the commit record

    def _path(self, name):
        return self._dir + "/" + name

    def _seg_path(self, num):
        return self._dir + "/q%d.log" % num

    def _commit(self, head_seg, head_off):
        self._gen = (self._gen + 1) & 0xFFFFFFFF
        body = struct.pack(
            _COMMIT_FMT, _COMMIT_MAGIC, self._gen, head_seg, head_off, self.dropped, self.dead_count
        )
        tmp = self._path("commit.tmp")
        with open(tmp, "wb") as f:
            f.write(body + struct.pack("<I", crc32(body)))
        os.rename(tmp, self._path("commit"))
        self._head_seg = head_seg
        self._head_off = head_off

    # ---- opening

    # ---- queries

    def __len__(self):
        return sum(self._counts) - self._head_idx

    def size_bytes(self):
        """Bytes the queue's segments take on flash (delivered head part included)."""
        return sum(self._ends)

    def queued(self):
        """The undelivered readings as a `Queued` view, read from flash as they are asked for.

        Counts for ack/dead_letter refer to this view, as to a peek."""
        from kpnthings.outbox_read import Queued

        self._lost_since_peek = 0
        return Queued(self)

    def peek(self, max_count):
        """Up to max_count undelivered readings, oldest first, as dicts."""
        q = self.queued()
        out = []
        try:
            for i in range(max_count):
                out.append(q[i])
        except IndexError:
            pass
        finally:
            q.close()
        return out

    def dead_letters(self):
        """Readings in the dead-letter store, oldest first (for diagnostics and tests)."""
        from kpnthings import outbox_dead

        return outbox_dead.dead_letters(self)

    # ---- changes

    def append(self, record):
        """Store one reading; it is on flash when this returns. Drops the oldest when full,
        and when the flash is (a full filesystem: the oldest segment goes, and one more try)."""
        refused = self.extend((record,))
        if refused:
            raise refused[0][1]

    def extend(self, records):
        """Store readings, on flash when this returns, with one write per segment they fill:
        a device stores a cycle's readings at once, because on LittleFS every write to a file
        costs about one block erase, whatever its length. Returns the (record, OutboxError)
        pairs refused (not a reading this format can hold); OSError when the flash failed."""
        from kpnthings.outbox_encode import encode_record

        refused = []
        frames = []
        for record in records:
            try:
                data = frame(encode_record(record))
                if len(data) > min(self._seg_max, _MAX_PAYLOAD + _HDR_LEN):
                    raise OutboxError("record %s is too large for the outbox" % record.get("n"))
                frames.append(data)
            except OutboxError as e:
                refused.append((record, e))
        # The encoder goes before the send that follows a store: 2 KB less at the cycle's peak.
        encode_record = None
        from kpnthings import unload

        unload("outbox_encode")
        while frames:
            # As many frames as the tail segment has room for; a new segment if none fits.
            if self._nums and self._tail_open and self._ends[-1] + len(frames[0]) <= self._seg_max:
                room = self._seg_max - self._ends[-1]
            else:
                room = self._seg_max
                self._tail_open = False  # _write starts a new one
            n = size = 0
            for data in frames:
                if size + len(data) > room:
                    break
                n += 1
                size += len(data)
            data = b"".join(frames[:n])
            try:
                self._write(data, n)
            except OSError:
                if len(self._nums) < 2:
                    raise  # nothing older to give up for it
                self._drop_head_segment()
                self._write(data, n)
            del frames[:n]
        return refused

    def _write(self, data, n):
        """Append `data`, `n` whole frames, to the tail segment (a new one when it is closed)."""
        if not self._nums or not self._tail_open:
            self._nums.append(self._next)
            self._ends.append(0)
            self._counts.append(0)
            self._next += 1
            self._tail_open = True
        while len(self._nums) > 1 and self.size_bytes() + len(data) > self._max:
            self._drop_head_segment()
        path = self._seg_path(self._nums[-1])
        try:
            with open(path, "ab") as f:
                f.write(data)
        except OSError:
            # Part of the frame may be on flash; never append after it.
            self._tail_open = False
            if not self._ends[-1]:  # a new segment with nothing valid: no entry without a file
                _remove(path)
                self._nums.pop()
                self._ends.pop()
                self._counts.pop()
            raise
        self._ends[-1] += len(data)
        self._counts[-1] += n

    def _drop_head_segment(self):
        lost = self._counts[0] - self._head_idx
        self.dropped += lost
        self._lost_since_peek += lost
        self._advance_to(1, 0, 0)

    def _advance_to(self, seg_index, off, head_idx):
        """Make (segment index, offset) the new head, commit it, delete what lies before it.

        head_idx is the number of valid frames before `off` in that segment.
        """
        if seg_index < len(self._nums) and off > 0 and off >= self._ends[seg_index]:
            if seg_index == len(self._nums) - 1:
                # Queue empty: the next append starts a fresh segment, so this file can go too.
                self._tail_open = False
            seg_index, off, head_idx = seg_index + 1, 0, 0
        head = self._nums[seg_index] if seg_index < len(self._nums) else self._next
        self._commit(head, off)
        for _ in range(seg_index):
            _remove(self._seg_path(self._nums[0]))
            self._nums.pop(0)
            self._ends.pop(0)
            self._counts.pop(0)
        self._head_idx = head_idx

    def ack(self, count):
        """The oldest `count` readings were accepted by KPN: remove them.

        `count` refers to the last peek: readings the bound dropped since then are not
        removed twice, so an append between peek and ack cannot lose an unsent reading.
        """
        from kpnthings.outbox_read import consume

        consume(self, count, False)

    def dead_letter(self, count):
        """The oldest `count` readings were rejected as malformed: move them to the dead store."""
        from kpnthings.outbox_read import consume

        consume(self, count, True)

    def rest(self):
        """Let the code that writes records (kpnthings.outbox_encode) and reads them back
        (kpnthings.outbox_read) go until the next cycle: a resting device does neither."""
        from kpnthings import unload

        unload("outbox_read", "outbox_encode")

    def clear_dropped(self, n):
        """`n` dropped readings were reported in an accepted uplink: stop reporting them."""
        if n <= 0:
            return
        self.dropped = max(0, self.dropped - n)
        self._commit(self._head_seg, self._head_off)
