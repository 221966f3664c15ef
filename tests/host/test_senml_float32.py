"""Float32 text on the real rp2 firmware equals the host's float32 simulation, byte for byte.

Issue 17, finding 14: a board has native 32-bit floats, and its float path (FLOAT32 None) is one
the host never runs: the host forces float32 (FLOAT32 True) on 64-bit floats. Here the real
MicroPython 1.28 RPI_PICO_W firmware on an emulated RP2040 (RP2EMU, see test_rp2emu.py) formats
float32 values from their bits with the .mpy files a deploy puts on a board, through
senml_text.format_float, senml.Pack (its checked and its cached way) and batch.write_pack. Every
text, and whether the exact search (kpnthings.senml_exact) was needed, must be what the host's
float32 simulation gives; and that text must be the shortest that reads back to the float32.
"""

import os
import random
import struct
import sys
from pathlib import Path

import pytest

from kpnthings import senml, senml_text
from kpnthings_tools import build, rp2emu

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "build" / "rp2emu-tests"
MODULES = ("__init__", "senml_text", "senml_exact", "senml_encode", "senml", "senml_check", "batch")
EXACT = "kpnthings.senml_exact"

# float32 bit patterns with the text they must give; the finding's values first.
NAMED = [
    (0x501502F9, "10000000000.0"),  # 1e10: exact, and 2**24 and over
    (0x7F7FC99E, "3.4e+38"),  # the rp2 firmware wrote 3.3999999521443642e+38
    (0x4B800000, "16777216.0"),  # 2**24
    (0x4B800001, "16777218.0"),  # 2**24 + 2
    (0x00000001, "1e-45"),  # smallest subnormal (1.5e-45 rounds to it)
    (0x80000001, "-1e-45"),
    (0x007FFFFF, "1.1754942e-38"),  # largest subnormal
    (0x00800000, "1.1754944e-38"),  # smallest normal
    (0x47F1205A, "123456.7"),
    (0x80000000, "-0.0"),
    (0x00000000, "0.0"),
    (0x7F7FFFFF, "3.4028235e+38"),  # largest float32
    (0xFF7FFFFF, "-3.4028235e+38"),
    (0x5D800000, "1.1529215e+18"),  # 2**60
    (0x4E92A09F, "1230000000.0"),  # 1.23e9 is 1229999872 as a float32
    (0x0DA24260, "1e-30"),
    (0x4423A8B3, "654.6359"),  # x * 10**4 rounds up past the half in float32
    (0x3DA288EB, "0.07936271"),  # and x * 10**8
    (0x41AC3D71, "21.53"),
    (0xC1AC3D71, "-21.53"),
    (0x411B3333, "9.7"),
    (0x3DCCCCCD, "0.1"),
    (0x3EAAAAAB, "0.33333334"),
    (0x3727C5AC, "1e-05"),
]


def _values():
    rnd = random.Random(17014)
    out = [b for b, _ in NAMED]
    # Any float32: mostly far exponents (the exact search).
    for _ in range(120):
        out.append(rnd.randrange(0x7F800000) | rnd.choice((0, 0x80000000)))
    # Readings: up to 7 digits, 1e-4 to 1e7 (mostly the fast path).
    for _ in range(120):
        x = rnd.randrange(1, 10 ** rnd.randrange(1, 8)) / 10 ** rnd.randrange(0, 8)
        if 1e-4 <= x < 1e7:
            out.append(_bits(x))
    return sorted(set(out), key=out.index)


def _bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _float(b):
    return struct.unpack("<f", struct.pack("<I", b))[0]


def _r32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


# Runs on the chip: one line per value, from the board's own float path (FLOAT32 None).
CHIP_SCRIPT = """
import struct, sys
from kpnthings import batch, senml_text
from kpnthings.senml import Pack
print("@@NATIVE32", senml_text._NATIVE32)
buf = bytearray(128)
for b in BITS:
    x = struct.unpack("<f", struct.pack("<I", b))[0]
    sys.modules.pop("%(exact)s", None)
    t = senml_text.format_float(x)
    used = "%(exact)s" in sys.modules
    p = Pack().add("t", x).add("t", x).encode()
    end, n = batch.write_pack(buf, "d:", [{"n": "t", "v": x}])
    print("@@F %%08x %%d %%s %%s %%s" %% (b, used, t, p.decode(), bytes(buf[:end]).decode()))
""" % {"exact": EXACT}


def _host(b):
    """What the host's float32 simulation writes for float32 bits b: (exact used, text, Pack
    body, batch body), as the chip script prints them."""
    x = _float(b)
    sys.modules.pop(EXACT, None)
    text = senml_text.format_float(x, True)
    used = EXACT in sys.modules
    old = senml.FLOAT32
    senml.FLOAT32 = True
    try:
        pack = senml.Pack().add("t", x).add("t", x).encode().decode()
    finally:
        senml.FLOAT32 = old
    body = '[{"bn":"d:","n":"t","v":%s}]' % text
    return "%08x %d %s %s %s" % (b, used, text, pack, body)


def test_named_values_are_the_shortest_float32_text_on_the_host():
    for b, want in NAMED:
        assert senml_text.format_float(_float(b), True) == want, hex(b)


def test_host_float32_text_reads_back_and_is_shortest():
    for b in _values():
        x = _float(b)
        text = senml_text.format_float(x, True)
        back = float(text)
        assert _bits(back) == b or (x == 0 and text == ("-0.0" if b >> 31 else "0.0")), text
        digits = text.split("e")[0].lstrip("-").replace(".", "").strip("0") or "0"
        for p in range(1, len(digits)):
            shorter = "%.*g" % (p, x)
            try:
                assert _r32(float(shorter)) != x, (hex(b), text, shorter)
            except OverflowError:  # beyond float32 range, so not x either
                pass


def test_host_float32_simulation_takes_the_boards_steps():
    # Where a float32 board's product x * 10**n rounds up past a half, its fast path cannot
    # prove the text and the exact search writes it; the simulation must do the same.
    sys.modules.pop(EXACT, None)
    assert senml_text.format_float(_float(0x4423A8B3), True) == "654.6359"
    assert EXACT in sys.modules
    sys.modules.pop(EXACT, None)
    assert senml_text.format_float(_float(0x41AC3D71), True) == "21.53"
    assert EXACT not in sys.modules


@pytest.mark.skipif(
    not os.environ.get(rp2emu.ENV), reason="RP2EMU is not set (the emulated RP2040's folder)"
)
def test_the_rp2_firmware_writes_the_hosts_float32_bytes(tmp_path):
    try:
        emu = rp2emu.prepare()
    except rp2emu.Unavailable as e:
        pytest.fail("RP2EMU is set but the emulator cannot run: %s" % e)
    files = []
    for name in MODULES:
        mpy = WORK / "float32" / "kpnthings" / (name + ".mpy")
        build.compile_file(
            ROOT / "lib" / "kpnthings" / (name + ".py"),
            mpy,
            "armv6m",
            source_name="kpnthings/%s.py" % name,
        )
        files.append((mpy, "/lib/kpnthings/%s.mpy" % name))
    image = WORK / "float32.img"
    r = rp2emu.build_image(files, image, emu=emu)
    assert r.ok, r.error()
    values = _values()
    script = tmp_path / "float32.py"
    script.write_text("BITS = %r\n%s" % (values, CHIP_SCRIPT))
    r = rp2emu.run(script, fs_in=image, emu=emu)
    assert r.ok, r.error()
    assert r.lines("@@NATIVE32") == ["True"]  # the chip's floats are float32
    got = r.lines("@@F")
    want = [_host(b) for b in values]
    assert len(got) == len(want)
    diff = [(w, g) for w, g in zip(want, got, strict=True) if w != g]
    assert not diff, "%d of %d values differ (host, chip), first:\n%s" % (
        len(diff),
        len(want),
        "\n".join("host %s\nchip %s" % d for d in diff[:8]),
    )
