"""ROMFS for `kpnthings deploy`: read the board's answer to `mpremote romfs query`, build the image.

A board whose firmware has a ROMFS partition runs .mpy bytecode in place from flash, so the
library costs almost no heap; stock ESP32_GENERIC and RPI_PICO_W firmware (up to 1.28) has none,
and there deploy copies .mpy files that each import loads into the heap. The partition is
mounted at /rom, and /rom/lib comes before /lib on sys.path, so the image keeps the board's
layout: lib/kpnthings/*.mpy and lib/boards/*.mpy.

mpremote's query (mpremote/commands.py, _do_romfs_query) prints one of:

    ROMFS is not enabled on this device
    No ROMFS partitions available
    ROMFS0 partition has size 131072 bytes (32 blocks of 4096 bytes each)
      Raw contents: d2:cd:31:... ...
      ROMFS image size: 2048

Deploy writes partition 0, mpremote's default, so only ROMFS0's size counts.
"""

import contextlib
import io
import re
import shutil
from pathlib import Path

QUERY = ("romfs", "query")
PARTITION = 0
_SIZE = re.compile(r"^ROMFS(\d+) partition has size (\d+) bytes", re.M)
_NO_ROMFS = ("ROMFS is not enabled on this device", "No ROMFS partitions available")


class QueryError(Exception):
    """The query's output says neither yes nor no: the board's mpremote or firmware is unknown."""


class RomfsAnswer:
    """What the board said: `partition_size` in bytes, or None where it has no partition."""

    __slots__ = ("partition_size", "said")

    def __init__(self, partition_size, said):
        self.partition_size = partition_size
        self.said = said

    @property
    def has_partition(self):
        return self.partition_size is not None

    def __repr__(self):
        return "RomfsAnswer(%r, %r)" % (self.partition_size, self.said)


def parse_query(text, partition=PARTITION):
    """The RomfsAnswer in the output of `mpremote romfs query`; QueryError if it has none."""
    for line in text.splitlines():
        if line.strip() in _NO_ROMFS:
            return RomfsAnswer(None, line.strip())
    for match in _SIZE.finditer(text):
        if int(match.group(1)) == partition:
            return RomfsAnswer(int(match.group(2)), match.group(0))
    if _SIZE.search(text):
        return RomfsAnswer(None, "no ROMFS%d partition (the board has others)" % partition)
    last = text.strip().splitlines()[-1:] or ["no output"]
    raise QueryError("`mpremote romfs query` printed no partition size: %s" % last[0])


def build_image(files, tree, image):
    """Lay `files` [(local path, path inside the image)] out under `tree` and pack them with
    mpremote's own image builder (what `mpremote romfs build` runs). Returns the image's size."""
    from mpremote.romfs import make_romfs

    tree = Path(tree)
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for src, dest in files:
        target = tree / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the whole tree
        data = make_romfs(str(tree), mpy_cross=False)
    Path(image).write_bytes(data)
    return len(data)
