"""update_verify against the `cryptography` package: the stored vectors are genuine signatures,
fresh random ones made by cryptography verify on CPython and on the unix port, and signatures
cryptography refuses, update_verify refuses too.

Regenerate tests/data/update_vectors.json with
`python -m tests.host.test_update_verify_host` (from the repo root, tools/ on PYTHONPATH).
"""

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from kpnthings import update_verify
from kpnthings_tools import release_keys

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "data" / "update_vectors.json"
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def make_vectors(count=6, seed_messages=None):
    out = []
    messages = seed_messages or [
        b"",
        b"a",
        b'{"version":"1.0.1","files":[]}',
        bytes(range(256)),
        b"x" * 1000,
        b'{"version":"2.0.0"}\n',
    ]
    for i in range(count):
        key = release_keys.new_private_key()
        msg = messages[i % len(messages)]
        sig = release_keys.sign(key, msg)
        out.append(
            {"key": release_keys.public_bytes(key).hex(), "message": msg.hex(), "sig": sig.hex()}
        )
    return out


def test_stored_vectors_are_genuine():
    vectors = json.loads(VECTORS.read_text())["vectors"]
    assert len(vectors) >= 6
    for v in vectors:
        key, msg, sig = (bytes.fromhex(v[k]) for k in ("key", "message", "sig"))
        assert release_keys.verify(key, msg, sig)
        bad = bytearray(sig)
        bad[5] ^= 0x10
        assert not release_keys.verify(key, msg, bytes(bad))


def _cases(n):
    cases = []
    for v in make_vectors(n):
        key, msg, sig = (bytes.fromhex(v[k]) for k in ("key", "message", "sig"))
        cases.append((key, msg, sig, True))
        r, s = sig[:32], int.from_bytes(sig[32:], "big")
        # the other s of the pair is valid ECDSA too: both libraries must agree on it
        cases.append((key, msg, r + (_N - s).to_bytes(32, "big"), True))
        bad = bytearray(sig)
        bad[random.randrange(64)] ^= 1 << random.randrange(8)
        cases.append((key, msg, bytes(bad), False))
        cases.append((key, msg + b"!", sig, False))
    return cases


def test_fresh_cryptography_signatures_agree_on_cpython():
    for key, msg, sig, good in _cases(40):
        assert release_keys.verify(key, msg, sig) is good
        assert update_verify.verify(hashlib.sha256(msg).digest(), sig, key) is good


def test_fresh_cryptography_signatures_agree_on_unix_port(mp_env):
    cases = _cases(10)
    script = (
        "import hashlib\nfrom kpnthings import update_verify as u\n"
        "for k, m, s, g in %r:\n"
        "    print(u.verify(hashlib.sha256(m).digest(), s, k) is g)\n" % (cases,)
    )
    runtimes = [str(Path(sys.executable).parent / "micropython")]
    stock = os.environ.get("MICROPYTHON32_STOCK")
    if stock:
        runtimes.append(stock)
    for binary in runtimes:
        out = subprocess.run(
            [binary, "-c", script], env=mp_env(), capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.split()
        assert lines == ["True"] * len(cases), (binary, out.stdout, out.stderr)


def test_bench_figure_measures_time_and_peak_heap_on_the_64_bit_port():
    from kpnthings_tools.bench import runtimes, trees, update_sig

    trees.build_trees("xtensawin")
    fig = update_sig.measure(runtimes.MP64, "xtensawin")
    assert "error" not in fig, fig
    assert 0 < fig["us"] < 5_000_000
    assert 0 < fig["peak_bytes"] < 16 * 1024  # far below a full cycle's heap
    assert fig["module_bytes"] > 0
    rows = update_sig.rows({"update_verify": {"micropython64": fig}})
    assert any("time (ms)" in row[0] for row in rows)
    assert rows[0][1] == "runtime not set"  # the 32-bit row, absent here, says so


if __name__ == "__main__":
    VECTORS.write_text(
        json.dumps(
            {"about": "ECDSA P-256/SHA-256, made by cryptography", "vectors": make_vectors()}
        )
        + "\n"
    )
