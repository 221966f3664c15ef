"""The firmware with its bytecode executed in place, as from a board's ROMFS partition or a
frozen build: the .mpy tree is one ROMFS image (path in ROM_IMG) mounted at /rom, and imports
come from there instead of being copied into the heap. Run by kpnthings_tools.bench; the image
itself sits in the heap here (the unix port has no flash), and the bench subtracts its size."""

import os
import sys

import vfs

size = os.stat(os.getenv("ROM_IMG"))[6]
image = bytearray(size)  # one exact allocation, no growing read buffer
with open(os.getenv("ROM_IMG"), "rb") as f:
    f.readinto(image)
vfs.mount(vfs.VfsRom(image), "/rom")
sys.path[:] = ["/rom", ".frozen"]

from kpnthings import app  # noqa: E402

app.main()
