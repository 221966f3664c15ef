"""Power cut at every instant, torn writes included (SIGKILL never tears a write; flash does).

The outbox runs under CPython on a simulated filesystem that logs every change: a write (which
a power cut may tear after any byte), a truncating open, a remove, and a rename (modelled as
FAT does it: remove the target, then rename, two steps a cut can fall between). For random
operation sequences (hypothesis), the log is replayed up to every single change, and through
part of each write, and the outbox is opened on that image as at the next boot. Then:
- it opens without error, and the queue is usable afterwards;
- every reading whose append returned is still queued, unless its ack (or dead-letter) had
  started, or the bound dropped it (and `dropped` counts at least as many as are missing);
- no reading whose ack returned comes back, and the queue keeps its order without repeats.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpnthings import outbox as outbox_mod
from kpnthings.outbox import Outbox

DIR = "/flash/outbox"


class _File:
    def __init__(self, fs, path, mode):
        self.fs = fs
        self.path = path
        self.mode = mode
        self.pos = 0
        if mode == "wb":
            fs.log.append(("truncate", path))
            fs.apply(fs.log[-1], fs.files)
        elif mode == "ab":
            if path not in fs.files:
                fs.log.append(("truncate", path))
                fs.apply(fs.log[-1], fs.files)
        elif path not in fs.files:
            raise OSError(2, "ENOENT")

    def read(self, n=-1):
        data = self.fs.files[self.path]
        end = len(data) if n < 0 else self.pos + n
        out = bytes(data[self.pos : end])
        self.pos += len(out)
        return out

    def seek(self, off):
        self.pos = off

    def write(self, data):
        op = ("write", self.path, bytes(data))
        self.fs.log.append(op)
        self.fs.apply(op, self.fs.files)
        return len(data)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _FS:
    """An in-memory filesystem whose every change is logged for replay."""

    def __init__(self, files=None, log=None):
        self.files = {} if files is None else files
        self.dirs = {"/flash", DIR}
        self.log = [] if log is None else log

    @staticmethod
    def apply(op, files, cut=None):
        kind, path = op[0], op[1]
        if kind == "truncate":
            files[path] = bytearray()
        elif kind == "write":
            data = op[2] if cut is None else op[2][:cut]
            files.setdefault(path, bytearray()).extend(data)
        elif kind == "remove":
            files.pop(path, None)
        elif kind == "rename":
            files[op[2]] = files.pop(path)

    # the subset of `os` the outbox uses
    sep = "/"

    def listdir(self, path):
        prefix = path.rstrip("/") + "/"
        return [p[len(prefix) :] for p in self.files if p.startswith(prefix)]

    def stat(self, path):
        if path in self.dirs:
            return (0o040000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if path not in self.files:
            raise OSError(2, "ENOENT")
        return (0o100000, 0, 0, 0, 0, 0, len(self.files[path]), 0, 0, 0)

    def mkdir(self, path):
        self.dirs.add(path)

    def remove(self, path):
        if path not in self.files:
            raise OSError(2, "ENOENT")
        self.log.append(("remove", path))
        self.apply(self.log[-1], self.files)

    def rename(self, src, dst):
        if dst in self.files:  # FAT: the target goes first, in a step of its own
            self.log.append(("remove", dst))
            self.apply(self.log[-1], self.files)
        self.log.append(("rename", src, dst))
        self.apply(self.log[-1], self.files)

    def open(self, path, mode="r"):
        return _File(self, path, mode)


def _with_fs(fs, fn):
    saved_os, had_open = outbox_mod.os, "open" in vars(outbox_mod)
    outbox_mod.os = fs
    outbox_mod.open = fs.open
    try:
        return fn()
    finally:
        outbox_mod.os = saved_os
        if not had_open:
            del outbox_mod.open


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 6)),
        st.tuples(st.just("ack"), st.integers(1, 8)),
        st.tuples(st.just("dead"), st.integers(1, 3)),
        st.tuples(st.just("reopen"), st.just(0)),
        st.tuples(st.just("clear"), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


def _run(ops, max_bytes):
    """Run the scenario; returns (log, events) with events (log index, kind, seqs)."""
    fs = _FS()
    events = []

    def scenario():
        box = Outbox(DIR, max_bytes=max_bytes, dead_max_bytes=512)
        seq = 0
        for kind, n in ops:
            if kind == "append":
                for _ in range(n):
                    box.append({"n": "seq", "v": seq, "u": "count", "t": 1760000000 + seq})
                    events.append((len(fs.log), "appended", [seq]))
                    seq += 1
            elif kind in ("ack", "dead"):
                seqs = [r["v"] for r in box.peek(n)]
                events.append((len(fs.log), "started", seqs))
                if kind == "ack":
                    box.ack(n)
                else:
                    box.dead_letter(n)
                events.append((len(fs.log), "done", seqs))
            elif kind == "clear":
                events.append((len(fs.log), "clearing", []))
                box.clear_dropped(box.dropped)
            else:
                box = Outbox(DIR, max_bytes=max_bytes, dead_max_bytes=512)
        return seq

    total = _with_fs(fs, scenario)
    return fs.log, events, total


def _check_image(log, k, cut, events, max_bytes):
    """Boot on the image of changes log[:k] (plus `cut` bytes of write log[k]) and check it."""
    files = {}
    for op in log[:k]:
        _FS.apply(op, files)
    if cut is not None:
        _FS.apply(log[k], files, cut)
    # An event at index `at` happened after changes log[:at]: an append whose event is at or
    # before k is wholly in the image; an ack or dead-letter that started at or before k may
    # be partly or wholly applied; one that is done at or before k is wholly applied.
    appended, started, done = set(), set(), set()
    cleared = False
    for at, kind, seqs in events:
        if at > k:
            break
        if kind == "appended":
            appended.update(seqs)
        elif kind == "started":
            started.update(seqs)
        elif kind == "done":
            done.update(seqs)
        elif kind == "clearing":
            cleared = True
    fs = _FS(files=files)
    box = _with_fs(fs, lambda: Outbox(DIR, max_bytes=max_bytes, dead_max_bytes=512))
    queue = _with_fs(fs, lambda: [r["v"] for r in box.peek(100000)])
    where = "crash after change %d%s" % (k, "" if cut is None else " (torn at byte %d)" % cut)
    assert queue == sorted(set(queue)), where  # order kept, no repeats
    assert not set(queue) & done, where  # a finished ack never comes back
    missing = appended - started - set(queue)
    if missing:
        # Only the bound may take readings, oldest first, and it must count them.
        assert max(missing) < min(queue or [10**9]), (where, sorted(missing))
        if not cleared:
            assert box.dropped >= len(missing), (where, box.dropped, sorted(missing))
    # The queue works after the recovery.
    _with_fs(fs, lambda: box.append({"n": "seq", "v": 10**6, "t": 1}))
    again = _with_fs(fs, lambda: [r["v"] for r in box.peek(100000)])
    assert again[-1] == 10**6, where
    assert again[:-1] == queue[len(queue) - len(again) + 1 :], where  # at most the oldest went


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=_ops, small=st.booleans())
def test_power_cut_at_every_change_keeps_every_stored_reading(ops, small):
    max_bytes = 2048 if small else 65536
    log, events, _ = _run(ops, max_bytes)
    for k in range(len(log) + 1):
        _check_image(log, k, None, events, max_bytes)
        if k < len(log) and log[k][0] == "write":
            n = len(log[k][2])
            for cut in sorted({1, n // 2, n - 1} - {0, n}):
                _check_image(log, k, cut, events, max_bytes)
