"""The `kpnthings` CLI as a whole: values and packs from the command line, the version, the
installed entry point, and a broken config named by every command. The verbs have their own files:
test_cli_new_device.py, test_cli_token.py, test_cli_send.py, test_cli_mock_server.py and
test_cli_downlink.py."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_support import SECRET, UUID, run_cli

from kpnthings import senml
from kpnthings_tools import cli

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize(
    "text, value",
    [
        ("21", 21),
        ("-3", -3),
        ("21.5", 21.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("on", "on"),
        ("", ""),
        ("nan", "nan"),
        ("inf", "inf"),
        ("0x10", "0x10"),
    ],
)
def test_parse_value(text, value):
    got = cli.parse_value(text)
    assert got == value and type(got) is type(value)


def test_parse_measurements_refuses_a_bare_word():
    assert cli.parse_measurements(["a=1", "b=x=y"]) == [("a", 1), ("b", "x=y")]
    with pytest.raises(cli.CommandError):
        cli.parse_measurements(["temperature"])
    with pytest.raises(cli.CommandError):
        cli.parse_measurements(["=1"])


def test_build_pack_is_a_signed_kpn_pack():
    body = cli.build_pack(
        UUID, [("temperature", 21.5), ("door", True), ("mode", "eco")], 1700000000
    )
    assert body.startswith(b'[{"bn":"urn:dev:DVNUUID:%s:","bt":1700000000}' % UUID.encode())
    records = senml.decode(body)
    assert [(r["n"].rsplit(":", 1)[1], r.get("v", r.get("vb", r.get("vs")))) for r in records] == [
        ("temperature", 21.5),
        ("door", True),
        ("mode", "eco"),
    ]
    assert all(r["t"] == 1700000000 for r in records)


def test_a_config_that_is_not_json_is_named_by_every_command(capsys, tmp_path):
    # Issue 19: the commands that read a config printed JSON's message alone, not the file.
    path = tmp_path / "kitchen.json"
    path.write_text('{"dvnuuid": "%s", "secret": "%s",\n "board": "unix",}' % (UUID, SECRET))
    body = tmp_path / "b"
    body.write_bytes(b"[]")
    for argv in (
        ["token", "--config", str(path), str(body)],
        ["send", "--config", str(path), "t=1"],
        ["mock-server", "--device-config", str(path)],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == "", (argv, out)
        assert err.startswith("kpnthings: %s: not valid JSON: " % path), (argv, err)
        assert "line 2 column" in err and SECRET not in err, (argv, err)
    path.write_bytes(b'{"secret": "\xff"}')
    code, _, err = run_cli(capsys, "token", "--config", str(path), str(body))
    assert code == 2 and err.startswith("kpnthings: %s: not valid JSON: " % path), err


def test_installed_entry_point_runs():
    exe = Path(sys.executable).parent / "kpnthings"
    if not exe.exists():
        pytest.skip("kpnthings is not installed in this environment")
    result = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert result.returncode == 0
    for command in ("new-device", "token", "send", "mock-server"):
        assert command in result.stdout


def test_version_is_printed_and_matches_the_package(capsys):
    # Issue 19: `kpnthings --version` failed ("the following arguments are required").
    import kpnthings

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    out, err = capsys.readouterr()
    assert stopped.value.code == 0 and err == ""
    assert out == "kpnthings %s\n" % kpnthings.__version__
    # The firmware's version (printed at every boot) is the package's.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^version = "%s"$' % re.escape(kpnthings.__version__), pyproject, re.M)
