"""`kpnthings keygen` and `kpnthings release build|sign|verify`: the key pair, a release made
from a config's deploy set with its manifest, a signature the board's own check accepts, and
every way a release can be wrong refused."""

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_support import run_cli
from _config_support import GOOD

from kpnthings import update_verify
from kpnthings_tools import modules, release

UPDATE = {"url": "https://updates.example/offer", "key": "update_key.pub"}


def _config(tmp_path, **changes):
    cfg = dict(GOOD, update=UPDATE)
    cfg.update(changes)
    path = tmp_path / "device.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture
def keys(tmp_path, capsys):
    code, _out, err = run_cli(capsys, "keygen", "--out", str(tmp_path / "k"))
    assert code == 0, err
    return tmp_path / "k.key", tmp_path / "k_key.pub"


@pytest.fixture
def built(tmp_path, capsys, keys):
    cfg = _config(tmp_path)
    out_dir = tmp_path / "releases"
    code, out, err = run_cli(
        capsys, "release", "build", "--board", "esp32", "--config", str(cfg),
        "--version", "1.2.0", "--out", str(out_dir),
    )  # fmt: skip
    assert code == 0, err
    assert "release 1.2.0 for esp32" in out
    return out_dir / "1.2.0", cfg


def test_keygen_writes_an_owner_only_private_key_and_a_65_byte_public_key(keys, capsys):
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes()
    raw = public.read_bytes()
    assert len(raw) == 65 and raw[0] == 4
    update_verify.public_point(raw)  # a point of P-256, as the board reads it
    code, _out, err = run_cli(capsys, "keygen", "--out", str(private)[: -len(".key")])
    assert code == 2 and "exists" in err
    assert private.read_bytes().startswith(b"-----BEGIN")


def test_build_holds_the_configs_deploy_set_with_sizes_and_hashes(built):
    folder, cfg = built
    doc = json.loads((folder / release.MANIFEST).read_bytes())
    assert doc["version"] == "1.2.0" and doc["board"] == "esp32"
    names = [f[0] for f in doc["files"]]
    wanted = {
        rel[: -len(".py")] + ".mpy" for rel, _ in modules.module_set(json.loads(cfg.read_text()))
    }
    assert {n for n in names if n.startswith("kpnthings/")} == wanted
    assert "kpnthings/update_apply.mpy" in names and "boards/esp32.mpy" in names
    for name, size, digest in doc["files"]:
        data = (folder / name).read_bytes()
        assert len(data) == size
        assert hashlib.sha256(data).hexdigest() == digest
    # the manifest is the exact compact bytes the board hashes
    raw = (folder / release.MANIFEST).read_bytes()
    assert raw == release.manifest_bytes("1.2.0", "esp32", [tuple(f) for f in doc["files"]])


def test_build_stamps_the_version_into_the_package(built):
    folder, _cfg = built
    env = dict(os.environ, MICROPYPATH=str(folder))
    out = subprocess.run(
        [str(Path(sys.executable).parent / "micropython"), "-c",
         "import kpnthings; print(kpnthings.__version__)"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.stdout.strip() == "1.2.0", out.stderr


def test_build_refuses_bad_versions_a_config_without_update_and_a_rebuild(tmp_path, built):
    folder, cfg = built
    for bad in ("1.2", "1.2.0-rc1", "01.2.0", "v1.2.0", ""):
        with pytest.raises(release.ReleaseError, match=r"MAJOR\.MINOR\.PATCH"):
            release.build_release(cfg, "esp32", bad, tmp_path / "r2")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(GOOD))
    with pytest.raises(release.ReleaseError, match='no "update"'):
        release.build_release(plain, "esp32", "1.3.0", tmp_path / "r2")
    with pytest.raises(release.ReleaseError, match="never rebuilt"):
        release.build_release(cfg, "esp32", "1.2.0", folder.parent)
    with pytest.raises(release.ReleaseError, match="board"):
        release.build_release(cfg, "pico_w", "1.3.0", tmp_path / "r2")


def test_sign_makes_a_signature_the_boards_check_accepts(built, keys, capsys):
    folder, _cfg = built
    private, public = keys
    code, out, err = run_cli(
        capsys, "release", "sign", str(folder), "--key", str(private), "--public", str(public)
    )
    assert code == 0, err
    sig = (folder / release.SIGNATURE).read_bytes()
    raw = (folder / release.MANIFEST).read_bytes()
    assert len(sig) == 64
    assert update_verify.verify(hashlib.sha256(raw).digest(), sig, public.read_bytes())
    code, out, err = run_cli(capsys, "release", "verify", str(folder), "--public", str(public))
    assert code == 0 and "signature good" in out
    # the private key went nowhere near the release
    pem = private.read_bytes()
    for path in folder.rglob("*"):
        if path.is_file():
            assert pem[30:60] not in path.read_bytes()


def test_sign_refuses_a_tampered_file_and_a_mismatched_public_key(tmp_path, built, keys, capsys):
    folder, _cfg = built
    private = keys[0]
    code, _o, err = run_cli(capsys, "keygen", "--out", str(tmp_path / "other"))
    code, _o, err = run_cli(
        capsys, "release", "sign", str(folder), "--key", str(private),
        "--public", str(tmp_path / "other_key.pub"),
    )  # fmt: skip
    assert code == 2 and "not the public half" in err
    assert not (folder / release.SIGNATURE).exists()
    victim = folder / "kpnthings" / "app.mpy"
    victim.write_bytes(victim.read_bytes() + b"\0")
    code, _o, err = run_cli(capsys, "release", "sign", str(folder), "--key", str(private))
    assert code == 2 and "does not match the manifest" in err


def test_verify_refuses_a_manifest_changed_after_signing(built, keys, capsys):
    folder, _cfg = built
    private, public = keys
    assert run_cli(capsys, "release", "sign", str(folder), "--key", str(private))[0] == 0
    path = folder / release.MANIFEST
    path.write_bytes(path.read_bytes().replace(b'"1.2.0"', b'"1.2.1"'))
    code, _o, err = run_cli(capsys, "release", "verify", str(folder), "--public", str(public))
    assert code == 2 and "does not verify" in err


def test_deploy_copies_the_public_key_only_and_refuses_a_missing_one(tmp_path, keys):
    from kpnthings_tools import deploy

    private, public = keys
    cfg = _config(tmp_path, url="http://127.0.0.1:8080")
    with pytest.raises(deploy.DeployError, match=r"update\.key"):
        deploy.make_plan("esp32", cfg, dry_run=True, build_dir=tmp_path / "b1")
    (tmp_path / "update_key.pub").write_bytes(public.read_bytes())
    plan = deploy.make_plan("esp32", cfg, dry_run=True, build_dir=tmp_path / "b2")
    dests = {item.dest: item for item in plan.items}
    assert dests["update_key.pub"].src.read_bytes() == public.read_bytes()
    assert "lib/kpnthings/update_boot.mpy" in dests
    assert not any(item.src == private for item in plan.items)
    # a config without update deploys none of the update code
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(GOOD))
    plan = deploy.make_plan("esp32", plain, dry_run=True, build_dir=tmp_path / "b3")
    assert not [i.dest for i in plan.items if "update" in i.dest]


def test_deploy_copies_the_boot_py_that_picks_the_version_only_with_update(tmp_path, keys):
    from kpnthings_tools import deploy

    (tmp_path / "update_key.pub").write_bytes(keys[1].read_bytes())
    cfg = _config(tmp_path, url="http://127.0.0.1:8080")
    boot = {i.dest: i.src for i in deploy.make_plan("esp32", cfg, dry_run=True).items}["boot.py"]
    assert boot.name == "boot_update.py" and "update_boot" in boot.read_text()
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(GOOD))
    boot = {i.dest: i.src for i in deploy.make_plan("esp32", plain, dry_run=True).items}["boot.py"]
    assert boot.name == "boot.py" and "update" not in boot.read_text()
