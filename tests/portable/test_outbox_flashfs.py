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
