"""The outbox on the filesystems boards use: LittleFS (ESP32, rp2) and FAT, in a RAM block device.

MicroPython only (the unix port has VfsLfs2 and VfsFat; CPython has neither). The power-cut test
logs every block the filesystem writes while the outbox appends, acknowledges, dead-letters and
compacts, then rebuilds the device image as it was after each block write, mounts it as at the
next boot and checks that every reading whose append returned is still queued unless its ack
had started, and that no finished ack comes back.
"""

import os

from _support import Skip


class _RAMBlockDev:
    """A block device in RAM that can log its writes (MicroPython's extended block protocol)."""

    def __init__(self, block_size, blocks, log=None):
        self.block_size = block_size
        self.data = bytearray(block_size * blocks)
        self.log = log

    def readblocks(self, block, buf, offset=0):
        addr = block * self.block_size + offset
        buf[:] = self.data[addr : addr + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            offset = 0
        addr = block * self.block_size + offset
        self.data[addr : addr + len(buf)] = buf
        if self.log is not None:
            self.log.append((addr, bytes(buf)))

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return len(self.data) // self.block_size
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase
            if self.log is not None:
                self.log.append((arg * self.block_size, b"\xff" * self.block_size))
            addr = arg * self.block_size
            self.data[addr : addr + self.block_size] = b"\xff" * self.block_size
            return 0
        return 0


def _vfs(name):
    vfs = getattr(os, name, None)
    if vfs is None:
        raise Skip("no os.%s on this runtime" % name)
    return vfs


_MOUNT = "/kpnflash"


def _mount(vfs, bdev):
    os.mount(vfs(bdev), _MOUNT)


def _umount():
    try:
        os.umount(_MOUNT)
    except OSError:
        pass


def _rec(i):
    return {"n": "seq", "v": i, "u": "count", "t": 1760000000 + i}


def _scenario_on(vfs_name, block_size, blocks):
    from kpnthings.outbox import Outbox

    vfs = _vfs(vfs_name)
    bdev = _RAMBlockDev(block_size, blocks)
    vfs.mkfs(bdev)
    _mount(vfs, bdev)
    try:
        q = Outbox(_MOUNT + "/outbox", max_bytes=4096, dead_max_bytes=512)
        for i in range(400):
            q.append(_rec(i))
            if i % 3 == 2:
                q.ack(2)
            if i % 50 == 49:
                q.dead_letter(1)
        n = len(q)
        first = q.peek(1)[0]["v"]
        dropped = q.dropped
        _umount()
        _mount(vfs, bdev)  # a reboot: the same flash, mounted again
        q = Outbox(_MOUNT + "/outbox", max_bytes=4096, dead_max_bytes=512)
        assert len(q) == n
        assert q.dropped == dropped
        values = [r["v"] for r in q.peek(1000)]
        assert values[0] == first and values[-1] == 399
        assert values == sorted(set(values))
        assert q.dead_count == 8
        q.ack(len(q))
        assert len(q) == 0
        assert [x for x in os.listdir(_MOUNT + "/outbox") if x.startswith("q")] == []
    finally:
        _umount()


def test_littlefs_keeps_queue_and_counters_across_a_remount():
    _scenario_on("VfsLfs2", 512, 128)


def test_fat_keeps_queue_and_counters_across_a_remount():
    _scenario_on("VfsFat", 512, 256)


def _replay(log, k, block_size, blocks, base):
    bdev = _RAMBlockDev(block_size, blocks)
    bdev.data[:] = base
    for addr, data in log[:k]:
        bdev.data[addr : addr + len(data)] = data
    return bdev


def test_littlefs_power_cut_after_any_block_write_keeps_every_stored_reading():
    from kpnthings.outbox import Outbox

    vfs = _vfs("VfsLfs2")
    block_size, blocks = 512, 96
    log = []
    bdev = _RAMBlockDev(block_size, blocks)
    vfs.mkfs(bdev)
    base = bytes(bdev.data)
    bdev.log = log
    events = []  # (block writes before it, kind, seqs)
    _mount(vfs, bdev)
    try:
        q = Outbox(_MOUNT + "/ob", max_bytes=2048, dead_max_bytes=512)
        seq = 0
        for step in range(24):
            for _ in range(3):
                q.append(_rec(seq))
                events.append((len(log), "appended", (seq,)))
                seq += 1
            if step % 2:
                seqs = tuple(r["v"] for r in q.peek(4))
                events.append((len(log), "started", seqs))
                if step % 6 == 5:
                    q.dead_letter(4)
                else:
                    q.ack(4)
                events.append((len(log), "done", seqs))
    finally:
        _umount()
    assert len(log) > 50
    checked = 0
    for k in range(0, len(log) + 1):
        appended, started, done = set(), set(), set()
        for at, kind, seqs in events:
            if at > k:
                break
            {"appended": appended, "started": started, "done": done}[kind].update(seqs)
        _mount(vfs, _replay(log, k, block_size, blocks, base))
        try:
            q = Outbox(_MOUNT + "/ob", max_bytes=2048, dead_max_bytes=512)
            queue = [r["v"] for r in q.peek(1000)]
            where = "power cut after block write %d" % k
            assert queue == sorted(set(queue)), where
            for s in done:
                assert s not in queue, (where, s)
            missing = [s for s in appended if s not in started and s not in queue]
            assert not missing or q.dropped >= len(missing), (where, missing)
            q.append(_rec(10**6))
            assert q.peek(1000)[-1]["v"] == 10**6, where
            checked += 1
        finally:
            _umount()
    assert checked == len(log) + 1


def _fill(path, size):
    """A file of `size` bytes that the outbox does not own (a log, a user's data)."""
    with open(path, "wb") as f:
        chunk = b"\x00" * 512
        while size > 0:
            f.write(chunk[: min(size, 512)])
            size -= 512


def _bounded(q, appended):
    # Every reading is queued or counted as dropped, and RAM holds one entry per segment file.
    files = [x for x in os.listdir(q._dir) if x.startswith("q")]
    assert len(q._nums) == len(q._ends) == len(q._counts) == len(files), (len(q._nums), files)
    assert len(q) + q.dropped == appended, (len(q), q.dropped, appended)


def test_a_bound_larger_than_the_flash_is_clamped_at_open_and_nothing_fails():
    # Issue 17, finding 5: outbox_max_bytes may be 16 MB, a Pico W has about 850 KB of
    # filesystem. Here 96 KB of LittleFS in 4 KB blocks, as on the boards.
    from kpnthings.outbox import Outbox

    vfs = _vfs("VfsLfs2")
    bdev = _RAMBlockDev(4096, 24)
    vfs.mkfs(bdev)
    _mount(vfs, bdev)
    try:
        q = Outbox(_MOUNT + "/outbox", max_bytes=1 << 24)
        assert q._max < 96 * 1024  # a share of what the filesystem has free, not 16 MB
        for i in range(2000):
            q.append(_rec(i))  # none of them raises: the bound drops the oldest instead
        _bounded(q, 2000)
        assert q.dropped > 0
        assert len(q.peek(10)) == 10
        q.ack(10)  # the commit record still finds room
        assert q.dropped + len(q) == 1990
        kept = len(q)
        _umount()
        _mount(vfs, bdev)
        q = Outbox(_MOUNT + "/outbox", max_bytes=1 << 24)
        assert len(q) == kept  # the ack is on flash: that pack is not sent again
    finally:
        _umount()


def test_a_filesystem_filled_by_others_costs_the_oldest_segment_never_a_list_entry():
    # After the outbox opened, something else takes the free space: every append that finds
    # no room drops the oldest segment and tries once more; what still fails leaves no entry.
    from kpnthings.outbox import Outbox

    vfs = _vfs("VfsLfs2")
    bdev = _RAMBlockDev(4096, 24)
    vfs.mkfs(bdev)
    _mount(vfs, bdev)
    try:
        q = Outbox(_MOUNT + "/outbox", max_bytes=32768)
        for i in range(400):
            q.append(_rec(i))
        st = os.statvfs(_MOUNT)
        _fill(_MOUNT + "/other", (st[4] - 1) * st[1])  # all but one block
        failed = 0
        for i in range(400, 2400):
            try:
                q.append(_rec(i))
            except OSError:
                failed += 1
        _bounded(q, 2400 - failed)
        assert failed < 20, failed  # the oldest readings made room for the newest
        os.remove(_MOUNT + "/other")
        q.append(_rec(9999))
        assert q.peek(len(q))[-1]["v"] == 9999
    finally:
        _umount()


class _EraseCounter(_RAMBlockDev):
    erases = 0

    def ioctl(self, op, arg):
        if op == 6:
            self.erases += 1
        return _RAMBlockDev.ioctl(self, op, arg)


def _erases_per_reading(one_write_per_cycle):
    from kpnthings.outbox import Outbox

    vfs = _vfs("VfsLfs2")
    bdev = _EraseCounter(4096, 64)  # 256 KB in 4 KB blocks, as on the boards
    vfs.mkfs(bdev)
    _mount(vfs, bdev)
    try:
        q = Outbox(_MOUNT + "/outbox", max_bytes=32768)
        bdev.erases = 0
        seq = 0
        for _ in range(40):  # 40 cycles of 6 readings, nothing sent
            cycle = [_rec(seq + i) for i in range(6)]
            seq += 6
            if one_write_per_cycle:
                assert q.extend(cycle) == []
            else:
                for rec in cycle:
                    q.append(rec)
        assert len(q) == seq
        return bdev.erases / seq
    finally:
        _umount()


def test_a_cycle_of_readings_costs_the_flash_one_write_not_one_per_reading():
    # Issue 17, finding 6: each write to a LittleFS file costs about one block erase.
    per_append = _erases_per_reading(False)
    per_cycle = _erases_per_reading(True)
    print("erases per reading: %.3f one by one, %.3f a cycle at once" % (per_append, per_cycle))
    assert per_cycle * 3 <= per_append, (per_cycle, per_append)
