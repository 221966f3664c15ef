"""Fleet provisioning: `kpnthings new-device --count N --out DIR` writes N configs and the KPN
Things Portal bulk CSV; every row and every config is checked against KPN's identity rules."""

import csv
import json
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kpnthings import config as device_config
from kpnthings_tools import deploy, fleet

ROOT = Path(__file__).resolve().parents[2]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SECRET = re.compile(r"^[0-9a-zA-Z]{30,100}$")


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "kpnthings_tools.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def _read_csv(path):
    raw = path.read_bytes()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return raw, rows


@pytest.mark.parametrize(
    ("count", "first_name"), [(1, "field-01"), (12, "field-01"), (150, "field-001")]
)
def test_fleet_csv_and_configs_are_valid_and_unique(tmp_path, count, first_name):
    out = tmp_path / "fleet"
    proc = _cli(
        "new-device",
        "--count",
        str(count),
        "--out",
        str(out),
        "--name",
        "field",
        "--board",
        "esp32",
        "--wifi-ssid",
        "Site",
        "--wifi-password",
        "correcthorse",
    )
    assert proc.returncode == 0, proc.stderr
    raw, rows = _read_csv(out / fleet.CSV_NAME)
    assert rows[0] == ["Name", "DvnUUID", "Shared Secret"]
    body = rows[1:]
    assert len(body) == count
    assert raw.count(b"\r\n") == count + 1  # RFC 4180 line endings, as spreadsheets expect
    names = [r[0] for r in body]
    ids = [r[1] for r in body]
    secrets = [r[2] for r in body]
    assert names[0] == first_name and names == sorted(names)
    assert len(set(names)) == len(set(ids)) == len(set(secrets)) == count
    for dvnuuid, secret in zip(ids, secrets, strict=True):
        assert UUID4.match(dvnuuid), dvnuuid
        assert uuid.UUID(dvnuuid).version == 4
        assert SECRET.match(secret)
    # Only names and ids reach the terminal; secrets stay in the files.
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr
    # Secrets on disk are for the owner only.
    for path in [out / fleet.CSV_NAME, *(out / (n + ".json") for n in names)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Every config matches its row and passes the firmware's own validator.
    for name, dvnuuid, secret in body:
        cfg = json.loads((out / (name + ".json")).read_text())
        # The device's name is in its config as in the CSV (and in the file name).
        assert (cfg["name"], cfg["dvnuuid"], cfg["secret"]) == (name, dvnuuid, secret)
        assert device_config.unknown_keys(cfg) == []
        assert cfg["board"] == "esp32" and cfg["wifi_ssid"] == "Site"
        assert cfg["ca_file"] == "ca.der"  # https with verification by default
        checked = device_config.validate(cfg)
        assert checked["dvnuuid"] == dvnuuid
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [fleet.CSV_NAME] + [n + ".json" for n in names]
    )


def test_fleet_configs_are_ready_for_deploy(tmp_path):
    import ssl

    trustme = pytest.importorskip("trustme")
    out = tmp_path / "fleet"
    assert (
        _cli(
            "new-device",
            "--count",
            "2",
            "--out",
            str(out),
            "--board",
            "pico_w",
            "--wifi-ssid",
            "Site",
        ).returncode
        == 0
    )
    ca = out / "ca.der"  # beside the configs: deploy finds it through ca_file
    ca.write_bytes(ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode()))
    plan = deploy.make_plan(
        "pico_w", out / "device-01.json", dry_run=True, build_dir=tmp_path / "b"
    )
    assert {"config.json", "ca.der"} <= set(i.dest for i in plan.items)


def test_fleet_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "fleet"
    first = _cli("new-device", "--count", "2", "--out", str(out), "--board", "unix")
    assert first.returncode == 0
    before = (out / fleet.CSV_NAME).read_bytes()
    again = _cli("new-device", "--count", "2", "--out", str(out), "--board", "unix")
    assert again.returncode == 2 and "--force" in again.stderr
    assert (out / fleet.CSV_NAME).read_bytes() == before
    forced = _cli("new-device", "--count", "2", "--out", str(out), "--board", "unix", "--force")
    assert forced.returncode == 0
    assert (out / fleet.CSV_NAME).read_bytes() != before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "3"], "--count needs --out"),
        (["--out", "x"], "add --count"),
        (["--count", "0", "--out", "x"], "between 1 and"),
        (["--count", "2", "--out", "x", "--config-out", "c.json"], "with --count use --out"),
        (["--count", "2", "--out", "x", "--name", "bad name!"], "prefix"),
    ],
)
def test_fleet_usage_errors(tmp_path, args, message):
    args = [str(tmp_path / a) if a in ("x", "c.json") else a for a in args]
    proc = _cli("new-device", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (tmp_path / "x").exists()


def test_csv_quotes_what_needs_quoting():
    text = fleet.csv_text([("a,b", "0" * 8 + "-0000-4000-8000-" + "0" * 12, "S" * 30)])
    rows = list(csv.reader(text.splitlines()))
    assert rows[1][0] == "a,b"


def test_each_fleet_config_carries_the_name_of_its_csv_row(tmp_path):
    # Issue 19: the name travels from --name into every config, beside the CSV's Name column,
    # so that `kpnthings mock-server --device-config` and its dashboard can show it.
    out = tmp_path / "fleet"
    proc = _cli("new-device", "--count", "3", "--out", str(out), "--name", "shed")
    assert proc.returncode == 0, proc.stderr
    _, rows = _read_csv(out / fleet.CSV_NAME)
    for name, dvnuuid, _ in rows[1:]:
        cfg = json.loads((out / (name + ".json")).read_text())
        assert (cfg["name"], cfg["dvnuuid"]) == (name, dvnuuid)
    assert [r[0] for r in rows[1:]] == ["shed-01", "shed-02", "shed-03"]
