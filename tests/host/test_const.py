"""Compile-time constants in the device code: `_NAME = const(...)` (micropython.const, an identity
function on CPython through kpnthings.compat).

mpy-cross folds such a constant into the code that uses it and never stores its name, so it
costs the board no interned string; every name a loaded module keeps is interned for good, and
the firmware's names sit just under the size of a pool (see README, Benchmarks). A constant
folded this way cannot be imported by another module, so the few shared ones are written
again where they are used: this checks that the copies agree and that the names really go.
"""

import re
import struct
from pathlib import Path

import pytest

from kpnthings import http_chunked, http_response, outbox, outbox_open, outbox_read
from kpnthings_tools import build

LIB = Path(__file__).resolve().parents[2] / "lib" / "kpnthings"
CONST = re.compile(r"^(_[A-Z][A-Z0-9_]*) = const\(", re.M)


def test_copies_of_a_constant_agree():
    assert outbox_read._MAGIC == outbox._MAGIC
    assert outbox_read._HDR_LEN == outbox._HDR_LEN == struct.calcsize(outbox._HDR)
    assert outbox_read._MAX_PAYLOAD == outbox._MAX_PAYLOAD
    assert outbox_open._COMMIT_LEN == struct.calcsize(outbox._COMMIT_FMT)
    assert http_chunked._MAX_HEAD == http_response._MAX_HEAD


def _qstr(name):
    """A name as an .mpy's qstr table holds it: its length shifted left by one, the bytes, a
    NUL (a bare substring search would find _MAGIC inside _COMMIT_MAGIC)."""
    return bytes([len(name) << 1]) + name.encode() + b"\0"


MODULES = sorted(p.stem for p in LIB.glob("*.py") if CONST.search(p.read_text()))


def test_the_library_uses_const():
    # the modules the loop keeps: a regression to plain names would show up here first
    assert {
        "device",
        "flush",
        "http_client",
        "http_response",
        "outbox",
        "outbox_read",
        "wiring",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_a_const_name_is_not_in_the_mpy(tmp_path, name):
    src = LIB / (name + ".py")
    names = CONST.findall(src.read_text())
    assert names
    dst = tmp_path / (name + ".mpy")
    build.compile_file(src, dst, arch="xtensawin", source_name="kpnthings." + name)
    data = dst.read_bytes()
    kept = [n for n in names if _qstr(n) in data]
    assert not kept, "%s.mpy still holds %s: not folded by mpy-cross" % (name, kept)
    # and the check can see a name that is kept: a plain assignment stays in the .mpy
    plain = tmp_path / "plain.py"
    plain.write_text("_PLAIN_NAME = 7\n\ndef f():\n    return _PLAIN_NAME\n")
    build.compile_file(plain, tmp_path / "plain.mpy", arch="xtensawin")
    assert _qstr("_PLAIN_NAME") in (tmp_path / "plain.mpy").read_bytes()
