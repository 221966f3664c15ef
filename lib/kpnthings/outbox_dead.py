"""The outbox's dead-letter store: readings KPN refused as malformed, kept on flash (bounded,
in two files, `dead.log` and `dead.old`) for diagnosis. Loaded only when a pack is refused or
the store is read, and unloaded after.
"""

from kpnthings import outbox as _box
from kpnthings.outbox import _file_size, _remove, frame
from kpnthings.outbox_read import decode_record, scan


def store_dead(box, frames):
    half = box._dead_max // 2
    path = box._path("dead.log")
    size = max(0, _file_size(path))
    for fr in frames:
        data = frame(fr[3])
        if len(data) > half:
            continue  # cannot be kept within the bound; still counted in dead_count
        if size + len(data) > half:
            _remove(box._path("dead.old"))
            try:
                _box.os.rename(path, box._path("dead.old"))
            except OSError:
                _remove(path)
            size = 0
        with _box._open(path, "ab") as f:
            f.write(data)
        size += len(data)


def dead_letters(box):
    """Readings in the dead-letter store, oldest first (for diagnostics and tests)."""
    out = []
    for name in ("dead.old", "dead.log"):
        path = box._path(name)
        for fr in scan(path, 0, _file_size(path), 1 << 30, True):
            try:
                out.append(decode_record(fr[2]))
            except (ValueError, IndexError, UnicodeError, TypeError):
                pass
    return out
