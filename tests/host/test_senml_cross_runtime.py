"""The same packs encode to identical bytes under CPython and under MicroPython (.py and .mpy).

The cases live in senml_cases.py, which both interpreters import; MicroPython prints its lines
from a subprocess and they must equal CPython's line for line.
"""

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MICROPYTHON = str(Path(sys.executable).parent / "micropython")

sys.path.insert(0, str(HERE))
import senml_cases  # noqa: E402


def _mp_lines(env):
    proc = subprocess.run(
        [MICROPYTHON, "-c", "import senml_cases; senml_cases.main()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout[-2000:]
    return proc.stdout.splitlines()


@pytest.mark.parametrize("runtime", ["micropython-src", "mpy-xtensawin", "mpy-armv6m"])
def test_micropython_writes_the_same_bytes_as_cpython(runtime, mp_env, request):
    if runtime != "micropython-src":
        request.getfixturevalue("mpy_built")
    want = senml_cases.lines()
    got = _mp_lines(mp_env(runtime, extra_path=["tests/host"]))
    assert len(want) > 2000
    # The pack lines first, so a mismatch there reads clearly.
    assert got[:12] == want[:12]
    diff = [(w, g) for w, g in zip(want, got, strict=False) if w != g]
    assert not diff, "%d of %d lines differ, first: %r" % (len(diff), len(want), diff[:3])
    assert len(got) == len(want)


def test_the_cases_cover_what_they_claim():
    lines = senml_cases.lines(50)
    by_label = dict(line.split(" ", 1) for line in lines)
    body = bytes.fromhex(by_label["floats"]).decode()
    assert '"v":9.7}' in body
    assert '"v":0.00134773}' in body
    assert '"v":-0.0}' in body
    assert bytes.fromhex(by_label["slash"]).count(b'"/"') == 2
    assert by_label["bad-name"].startswith("ERR record 2: field 'n': ")
    assert by_label["nan"].startswith("ERR record 0: field 'v': ")
    # Forced float32 text differs from float64 text for a typical value.
    f = [line.split(" ") for line in lines if line[0] == "f" and line[1].isdigit()]
    assert any(a != b and b != "ERR" for _, a, b in f)


def test_decode_fuzz_on_cpython_raises_only_senml_error():
    assert list(senml_cases.fuzz(20000)) == []


@pytest.mark.parametrize("runtime", ["micropython-src", "mpy-xtensawin", "mpy-armv6m"])
def test_decode_fuzz_on_micropython_raises_only_senml_error(runtime, mp_env, request):
    # MicroPython's json.loads is laxer than CPython's ({true:1} parses), so the same mutated
    # packs are thrown at it too.
    if runtime != "micropython-src":
        request.getfixturevalue("mpy_built")
    proc = subprocess.run(
        [MICROPYTHON, "-c", "import senml_cases; senml_cases.fuzz_main()"],
        cwd=ROOT,
        env=mp_env(runtime, extra_path=["tests/host"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout[-2000:]
    assert proc.stdout.splitlines()[-1] == "fuzz-other 0", proc.stdout[-2000:]
