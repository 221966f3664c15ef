"""`kpnthings new-device`: a fresh identity, printed or written as a private config the board
accepts, never over a file without --force, and the old identity kept with --previous."""

import json
import re
import uuid

from _cli_support import fields, run_cli

from kpnthings_tools import config_check, provision

SECRET_RE = re.compile(r"^[0-9a-zA-Z]{30,100}$")


def test_new_device_prints_a_v4_uuid_and_a_kpn_secret(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = set()
    for _ in range(3):
        code, out, err = run_cli(capsys, "new-device")
        assert code == 0 and err == ""
        got = fields(out)
        parsed = uuid.UUID(got["dvnuuid"])
        assert parsed.version == 4 and str(parsed) == got["dvnuuid"]  # canonical, lowercase
        assert SECRET_RE.match(got["secret"])
        seen.add((got["dvnuuid"], got["secret"]))
    assert len(seen) == 3
    assert list(tmp_path.iterdir()) == []  # nothing written without --config-out


def test_new_device_json_and_name(capsys):
    code, out, _ = run_cli(capsys, "new-device", "--json", "--name", "kitchen")
    got = json.loads(out)
    assert code == 0 and got["name"] == "kitchen"
    assert uuid.UUID(got["dvnuuid"]).version == 4 and SECRET_RE.match(got["secret"])


def test_new_device_keeps_the_name_in_the_config(capsys, tmp_path):
    # Issue 19: --name used to be printed and then lost.
    path = tmp_path / "kitchen.json"
    code, out, err = run_cli(
        capsys, "new-device", "--name", "Kitchen sensor", "--config-out", str(path)
    )
    assert code == 0, err
    cfg = json.loads(path.read_text())
    assert cfg["name"] == "Kitchen sensor" and fields(out)["name"] == "Kitchen sensor"
    checked, unknown = config_check.check_file(path)
    assert unknown == [] and checked["name"] == "Kitchen sensor"
    # A name the dashboard could not show on one line is refused before anything is written.
    code, _, err = run_cli(
        capsys, "new-device", "--name", "two\nlines", "--config-out", str(tmp_path / "b.json")
    )
    assert code == 2 and "name: must be" in err and not (tmp_path / "b.json").exists()


def test_new_device_writes_a_private_config(capsys, tmp_path):
    path = tmp_path / "config.json"
    code, out, _ = run_cli(
        capsys,
        "new-device",
        "--config-out",
        str(path),
        "--url",
        "http://127.0.0.1:8080",
        "--cycles",
        "3",
    )
    assert code == 0
    printed = fields(out)
    config = json.loads(path.read_text())
    assert (config["dvnuuid"], config["secret"]) == (printed["dvnuuid"], printed["secret"])
    assert config["url"] == "http://127.0.0.1:8080" and config["board"] == "unix"
    assert config["cycles"] == 3 and isinstance(config["interval_s"], int)
    assert "ca_file" not in config and "tls_insecure" not in config
    assert path.stat().st_mode & 0o777 == 0o600
    # The firmware's own validator accepts it.
    from kpnthings import config as device_config

    assert device_config.validate(config)["dvnuuid"] == config["dvnuuid"]
    assert device_config.unknown_keys(config) in ([], set(), ())


def test_new_device_https_config_names_a_ca_or_opts_out(capsys, tmp_path):
    verified, insecure = tmp_path / "a.json", tmp_path / "b.json"
    assert run_cli(capsys, "new-device", "--config-out", str(verified))[0] == 0
    assert run_cli(capsys, "new-device", "--config-out", str(insecure), "--tls-insecure")[0] == 0
    a, b = json.loads(verified.read_text()), json.loads(insecure.read_text())
    assert a["url"] == "https://prod.dm.kpnthings.com" and a["ca_file"] == "ca.der"
    assert "tls_insecure" not in a
    assert b["tls_insecure"] is True and "ca_file" not in b


def test_new_device_never_overwrites_without_force(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text("keep me")
    code, out, err = run_cli(capsys, "new-device", "--config-out", str(path))
    assert code == 2 and "--force" in err and out == ""
    assert path.read_text() == "keep me"
    assert run_cli(capsys, "new-device", "--config-out", str(path), "--force")[0] == 0
    assert SECRET_RE.match(json.loads(path.read_text())["secret"])


def test_new_device_previous_keeps_the_old_identity_for_the_readings_it_queued(capsys, tmp_path):
    # Issue 19: a board re-provisioned over its own config keeps the old identity (and those
    # it kept) in previous_identities, read before the file is replaced; no old secret printed.
    path = tmp_path / "device.json"
    base = ("new-device", "--board", "unix", "--url", "http://127.0.0.1:1")
    assert run_cli(capsys, *base, "--config-out", str(path))[0] == 0
    first = json.loads(path.read_text())
    again = base + ("--config-out", str(path), "--force", "--previous", str(path))
    code, out, err = run_cli(capsys, *again)
    assert code == 0, err
    second = json.loads(path.read_text())
    assert second["dvnuuid"] != first["dvnuuid"] and fields(out)["secret"] == second["secret"]
    assert first["secret"] not in out + err
    keep = {k: first[k] for k in ("dvnuuid", "secret")}
    assert second["previous_identities"] == [keep]
    assert run_cli(capsys, *again)[0] == 0
    third = json.loads(path.read_text())
    assert [p["dvnuuid"] for p in third["previous_identities"]] == [
        second["dvnuuid"],
        first["dvnuuid"],
    ]
    assert run_cli(capsys, "check-config", str(path))[:2] == (0, "ok\n")
    # At most config_check's limit: the oldest go.
    for _ in range(4):
        assert run_cli(capsys, *again)[0] == 0
    olds = json.loads(path.read_text())["previous_identities"]
    assert len(olds) == 4 and first["dvnuuid"] not in [p["dvnuuid"] for p in olds]
    # Errors name the file and the entry, never a secret.
    code, out, err = run_cli(capsys, *base, "--previous", str(tmp_path / "none.json"))
    assert code == 2 and "--previous: cannot read" in err and "none.json" in err
    broken = dict(third, previous_identities=[dict(keep, secret=keep["secret"][:10])])
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    code, out, err = run_cli(capsys, *base, "--previous", str(tmp_path / "broken.json"))
    assert code == 2 and "broken.json: previous_identities[0]: secret must be 30-100" in err, err
    assert keep["secret"][:10] not in err and third["secret"] not in out + err
    code, out, err = run_cli(
        capsys, *base, "--count", "2", "--out", str(tmp_path / "f"), "--previous", str(path)
    )
    assert code == 2 and "not with --count" in err


def test_identity_repr_hides_the_secret():
    ident = provision.new_identity("x")
    assert ident.secret not in repr(ident) and ident.dvnuuid in repr(ident)


def test_new_device_refuses_a_config_the_board_would_refuse(capsys, tmp_path):
    path = tmp_path / "esp32.json"
    code, out, err = run_cli(capsys, "new-device", "--board", "esp32", "--config-out", str(path))
    assert code == 2 and "wifi_ssid" in err and out == ""
    assert not path.exists()
    code, _, err = run_cli(
        capsys,
        "new-device",
        "--board",
        "esp32",
        "--wifi-ssid",
        "bench",
        "--wifi-password",
        "hunter2hunter2",
        "--config-out",
        str(path),
    )
    assert code == 0, err
    assert json.loads(path.read_text())["wifi_ssid"] == "bench"
    assert "hunter2hunter2" not in err


def test_new_device_unwritable_path_is_a_clear_error(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "new-device", "--config-out", str(tmp_path / "no" / "such" / "c.json")
    )
    assert code == 2 and "cannot write" in err
