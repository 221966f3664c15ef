"""`kpnthings token`: the Things-Message-Token of a body, from a file or stdin, with the secret
given or read from a config, and never echoed."""

import io
import json
import sys
from pathlib import Path

import pytest
from _cli_support import SECRET, UUID, run_cli

from kpnthings_tools import provision

DATA = Path(__file__).resolve().parent.parent / "data"
TOKEN_VECTORS = json.loads((DATA / "token.json").read_text())["vectors"]


@pytest.mark.parametrize("vector", TOKEN_VECTORS, ids=lambda v: v["token"][:8])
def test_token_matches_known_vectors(capsys, tmp_path, vector):
    body_file = tmp_path / "body.json"
    body_file.write_bytes(vector["body"].encode())
    code, out, err = run_cli(capsys, "token", "--secret", vector["secret"], str(body_file))
    assert code == 0 and out == vector["token"] + "\n"
    assert vector["secret"] not in err


def test_token_reads_stdin_byte_for_byte(capsys, monkeypatch):
    vector = TOKEN_VECTORS[2]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(vector["body"].encode())))
    code, out, _ = run_cli(capsys, "token", "--secret", vector["secret"], "-")
    assert (code, out) == (0, vector["token"] + "\n")
    # One more byte (a trailing newline, as `echo` adds) is another token.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(vector["body"].encode() + b"\n")))
    assert run_cli(capsys, "token", "--secret", vector["secret"], "-")[1] != out


def test_token_takes_the_secret_from_a_config(capsys, tmp_path):
    config = tmp_path / "c.json"
    provision.write_config(config, {"dvnuuid": UUID, "secret": SECRET, "board": "unix"})
    body = tmp_path / "b"
    body.write_bytes(b"[]")
    code, out, err = run_cli(capsys, "token", "--config", str(config), str(body))
    assert (code, out) == (0, TOKEN_VECTORS[3]["token"] + "\n")
    assert SECRET not in err


def test_token_short_secret_warns_without_echoing(capsys, tmp_path):
    body = tmp_path / "b"
    body.write_bytes(b"[]")
    code, out, err = run_cli(capsys, "token", "--secret", "MYKEY2", str(body))
    assert code == 0 and len(out.strip()) == 64
    assert "warning" in err and "MYKEY2" not in err


def test_token_missing_file_is_a_clear_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "token", "--secret", SECRET, str(tmp_path / "nope"))
    assert code == 2 and "cannot read" in err
