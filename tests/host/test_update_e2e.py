"""Signed updates on the unix port, with real files (docs/updates.md): the firmware boots as a
board does (boot.py, then main.py) in a board folder of its own, polls the emulator's update
host at boot, fetches a release the test built and signed, and switches version folders.

- a good update is applied, runs on trial, is trusted at its first accepted uplink and
  reported (`updateApplied`);
- a wrong signature, a wrong hash, a truncated download and a downgrade are refused with
  nothing changed: the marker as it was, the same version running and sending;
- a new version that raises at import, or that never reaches KPN, is rolled back within K
  boots and reported (`updateFailed`), and not taken again.
"""

import pytest
from _update_support import Rig, make_release

from kpnthings import __version__ as BASE
from kpnthings_tools import release_keys


@pytest.fixture
def rig(tmp_path, mp_env):
    r = Rig(tmp_path, mp_env)
    yield r
    r.close()


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout[-3000:] + proc.stderr
    return proc.stdout


def test_no_offer_boots_the_base_and_changes_nothing(rig):
    out = _ok(rig.boot())
    assert rig.running(out) == BASE
    assert rig.marker() is None
    assert rig.emu.updates.versions == {rig.config and _uuid(): BASE}
    assert not (rig.board / "u").exists()


def _uuid():
    from _outbox_support import UUID

    return UUID


def test_good_update_applied_on_trial_trusted_after_an_uplink_and_reported(rig):
    make_release(rig.releases, "9.0.0", rig.key)
    rig.emu.updates.offer("9.0.0", "all")
    out = _ok(rig.boot())  # the base fetches, checks, switches and resets
    assert rig.running(out) == BASE
    assert "[update] 9.0.0 checked and switched to" in out
    w = rig.marker()
    assert w[1:8] == ["u/a", "9.0.0", "0", "2", "-", BASE, "."]
    assert rig.slot_intact()
    out = _ok(rig.boot())  # the new version, on trial, reaches KPN: trusted
    assert rig.running(out) == "9.0.0"
    assert "9.0.0 on trial, boot 1 of 2" in out
    assert rig.marker()[1:] == ["u/a", "9.0.0", "."]
    assert rig.records("updateApplied") == ["9.0.0"]
    out = _ok(rig.boot())  # trusted: no trial, no new offer (the same version is refused)
    assert rig.running(out) == "9.0.0"
    assert "on trial" not in out
    assert rig.marker()[1:] == ["u/a", "9.0.0", "."]
    assert rig.emu.updates.versions[_uuid()] == "9.0.0"


def _refused(rig, why):
    before = rig.marker()
    out = _ok(rig.boot())
    assert "refused" in out and why in out, out[-3000:]
    assert rig.running(out) == BASE
    assert rig.marker() == before
    assert "uplink 2:" in out  # and the board went on sending
    out = _ok(rig.boot())
    assert rig.running(out) == BASE
    return out


def test_wrong_signature_refused_with_nothing_changed(rig):
    make_release(rig.releases, "9.0.0", release_keys.new_private_key())
    rig.emu.updates.offer("9.0.0", "all")
    _refused(rig, "signature does not verify")


def test_wrong_hash_refused_with_nothing_changed(rig):
    folder = make_release(rig.releases, "9.0.0", rig.key)
    victim = folder / "kpnthings" / "device.mpy"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    rig.emu.updates.offer("9.0.0", "all")
    _refused(rig, "kpnthings/device.mpy: sha256 differs")


def test_truncated_download_refused_with_nothing_changed(rig):
    make_release(rig.releases, "9.0.0", rig.key)
    rig.emu.updates.truncate["9.0.0/kpnthings/flush.mpy"] = 100
    rig.emu.updates.offer("9.0.0", "all")
    _refused(rig, "truncated")


def test_downgrade_and_same_version_refused(rig):
    make_release(rig.releases, "0.0.9", rig.key)
    rig.emu.updates.offer("0.0.9", "all")
    _refused(rig, "not newer than %s" % BASE)
    make_release(rig.releases, BASE, rig.key)
    rig.emu.updates.offer(BASE, "all")
    _refused(rig, "not newer than %s" % BASE)


def _rolled_back(rig, broken):
    make_release(rig.releases, "9.0.0", rig.key, broken)
    rig.emu.updates.offer("9.0.0", "all")
    _ok(rig.boot())
    assert rig.marker()[1:3] == ["u/a", "9.0.0"]
    outs = []
    for tries in (1, 2):  # K = 2 boots on trial, neither reaches KPN
        proc = rig.boot()
        outs.append(proc.stdout + proc.stderr)
        assert rig.marker()[1:5] == ["u/a", "9.0.0", str(tries), "2"]
    out = _ok(rig.boot())  # the third boot goes back, reports, and refuses 9.0.0 since
    assert rig.running(out) == BASE
    assert rig.marker()[1:] == ["-", BASE, "."]
    assert "[update] updateFailed 9.0.0: rolled back to %s" % BASE in out
    assert rig.records("updateFailed") == ["9.0.0"]
    out = _ok(rig.boot())
    assert rig.running(out) == BASE
    assert "9.0.0 refused: it failed here before" in out
    return outs


def test_a_version_that_raises_at_import_is_rolled_back_within_k_boots(rig):
    outs = _rolled_back(rig, {"kpnthings/app.py": "raise RuntimeError('broken release')\n"})
    assert all("broken release" in o for o in outs)


def test_a_version_that_never_reaches_kpn_is_rolled_back_within_k_boots(rig):
    from _firmware_support import ROOT

    auth = (ROOT / "lib" / "kpnthings" / "auth.py").read_text()
    # its tokens are wrong: the emulator answers 401 to every uplink of it
    broken = auth + "\n\ndef message_token(body, secret):\n    return '0' * 64\n"
    outs = _rolled_back(rig, {"kpnthings/auth.py": broken})
    assert all("401" in o for o in outs)


@pytest.mark.parametrize("runtime", ["micropython64", "micropython32-stock"])
def test_good_update_over_verified_https(tmp_path, mp_env, runtime):
    import os

    from kpnthings_tools.bench import pki

    binary = None
    if runtime != "micropython64":
        binary = os.environ.get("MICROPYTHON32_STOCK")
        if not binary:
            pytest.skip("MICROPYTHON32_STOCK is not set (the 32-bit ESP32-model unix port)")
    chain = pki.make_chain("ec", tmp_path / "pki")
    rig = Rig(tmp_path, mp_env, chain=chain, binary=binary)
    try:
        make_release(rig.releases, "9.0.0", rig.key)
        rig.emu.updates.offer("9.0.0", "all")
        out = _ok(rig.boot())
        assert "checked and switched to" in out
        assert rig.slot_intact()
        out = _ok(rig.boot())
        assert rig.running(out) == "9.0.0"
        assert rig.marker()[1:] == ["u/a", "9.0.0", "."]
        assert rig.records("updateApplied") == ["9.0.0"]
        # a board that trusts another root fetches nothing, and changes nothing
        (rig.board / "u").rename(rig.board / "u.kept")
        (rig.board / "ca.der").write_bytes(chain.other_ca_der.read_bytes())
        out = rig.boot().stdout
        assert "[update] no offer:" in out and rig.marker() is None
    finally:
        rig.close()
