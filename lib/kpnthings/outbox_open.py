"""Opening an outbox at boot: the newest valid commit record, the segments on flash, and the
files a crash left behind. Kept apart from kpnthings.outbox, which the loop holds: this runs
once per boot and is unloaded after.
"""

import struct

from kpnthings import outbox as _box
from kpnthings.compat import const
from kpnthings.outbox import (
    _COMMIT_FMT,
    _COMMIT_MAGIC,
    _file_size,
    _remove,
    crc32,
)
from kpnthings.outbox_read import _frame_at

_COMMIT_LEN = const(24)  # as in kpnthings.outbox: struct.calcsize(_COMMIT_FMT)


def makedirs(path):
    """mkdir -p: os.makedirs does not exist on MicroPython."""
    cur = "/" if path.startswith("/") else ""
    for part in path.split("/"):
        if not part:
            continue
        cur = cur + part
        try:
            _box.os.stat(cur)
        except OSError:
            _box.os.mkdir(cur)
        cur = cur + "/"


def _read_commit(box, name):
    try:
        with _box._open(box._path(name), "rb") as f:
            data = f.read(_COMMIT_LEN + 4)
    except OSError:
        return None
    if len(data) != _COMMIT_LEN + 4:
        return None
    if struct.unpack("<I", data[_COMMIT_LEN:])[0] != crc32(data[:_COMMIT_LEN]):
        return None
    fields = struct.unpack(_COMMIT_FMT, data[:_COMMIT_LEN])
    if fields[0] != _COMMIT_MAGIC:
        return None
    return fields[1:]  # gen, head_seg, head_off, dropped, dead


def _count(path, size, head_off):
    """(end of the last valid frame, valid frames, valid frames that start before head_off) of
    one segment, read frame by frame: no list of frames, whatever the segment holds."""
    end = count = before = 0
    try:
        f = _box._open(path, "rb")
    except OSError:
        return end, count, before
    try:
        while True:
            fr = _frame_at(f, end, size)
            if fr is None:
                return end, count, before
            if fr[0] < head_off:
                before += 1
            count += 1
            end = fr[1]
    finally:
        f.close()


def load(box):
    best = None
    for name in ("commit", "commit.tmp"):
        c = _read_commit(box, name)
        if c is not None and (best is None or c[0] > best[0]):
            best = c
    if best is None:
        best = (0, 0, 0, 0, 0)
    box._gen, box._head_seg, box._head_off, box.dropped, box.dead_count = best
    nums = []
    for name in _box.os.listdir(box._dir):
        if name.startswith("q") and name.endswith(".log"):
            try:
                nums.append(int(name[1:-4]))
            except ValueError:
                continue
    nums.sort()
    # Parallel lists, oldest first: segment number, valid end offset, valid frame count.
    box._nums, box._ends, box._counts = [], [], []
    box._head_idx = 0
    box._next = max(nums[-1] + 1 if nums else 0, box._head_seg)
    box._tail_open = False
    for num in nums:
        path = box._seg_path(num)
        if num < box._head_seg:
            _remove(path)  # wholly delivered; a crash came before its delete
            continue
        size = _file_size(path)
        end, count, before = _count(path, size, box._head_off if num == box._head_seg else 0)
        box._nums.append(num)
        box._ends.append(end)
        box._counts.append(count)
        if num == box._head_seg:
            box._head_idx = before
        box._tail_open = end == size  # a torn tail seals the segment
    if not box._nums or box._nums[0] != box._head_seg:
        box._head_off = 0
        box._head_idx = 0
    # A bound the flash cannot hold fails every append once it is full (a Pico W has about
    # 850 KB of filesystem, outbox_max_bytes may say 16 MB): keep to half of what is free, with
    # what the queue holds already, so commit records and the dead letters find room too.
    try:
        st = _box.os.statvfs(box._dir)
        room = (st[1] * st[4] + box.size_bytes()) // 2  # fragment size x blocks available
    except (AttributeError, OSError):
        return
    if room < box._max:
        box._max = max(2048, room)
        box._seg_max = max(512, min(4096, box._max // 8))
