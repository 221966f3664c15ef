"""`kpnthings send`: one signed pack to an emulator, the status, outcome and downlink printed; over
HTTPS only with a CA to verify the server (ca_file, ca_files) or an explicit opt-out."""

import json
import re
import ssl

import pytest
from _cli_support import SECRET, UUID, fields, run_cli, write_config
from _http_servers import start_mock_server, stop

from kpnthings_tools import provision
from kpnthings_tools.emulator import Emulator


@pytest.fixture
def emulator(tmp_path):
    emu = Emulator(tmp_path / "emu.sqlite3", {UUID: SECRET}, log=lambda line: None)
    server = emu.serve()
    yield server
    server.shutdown()


def test_send_prints_status_outcome_and_downlink(capsys, tmp_path, emulator):
    pytest.importorskip("kpnthings.client")
    config = write_config(tmp_path / "c.json", emulator.url)
    emulator.emulator.queue_downlink(UUID, b'[{"n":"led","vb":true}]')
    code, out, err = run_cli(capsys, "send", "--config", config, "temperature=21.5", "ok=true")
    assert code == 0, err
    got = fields(out)
    assert (got["status"], got["outcome"]) == ("200", "accepted")
    downlink = json.loads(got["downlink"])
    assert [(r["n"], r["vb"]) for r in downlink] == [("urn:dev:DVNUUID:%s:led" % UUID, True)]
    stored = emulator.emulator.messages(UUID)[-1]
    assert stored["status"] == 200
    assert [r["n"].rsplit(":", 1)[1] for r in stored["records"]] == ["temperature", "ok"]
    # Nothing queued now: an empty downlink.
    code, out, _ = run_cli(capsys, "send", "--config", config, "temperature=21.6")
    assert code == 0 and json.loads(fields(out)["downlink"]) == []
    assert SECRET not in out + err


def test_send_reports_a_refused_token(capsys, tmp_path, emulator):
    pytest.importorskip("kpnthings.client")
    wrong = "W" * 40
    config = write_config(tmp_path / "c.json", emulator.url, secret=wrong)
    code, out, err = run_cli(capsys, "send", "--config", config, "temperature=1")
    got = fields(out)
    assert code == 1 and (got["status"], got["outcome"]) == ("401", "unauthorized")
    assert wrong not in out + err


def test_send_without_values_or_config_is_a_usage_error(capsys, tmp_path):
    config = write_config(tmp_path / "c.json", "http://127.0.0.1:9")
    code, _, err = run_cli(capsys, "send", "--config", config)
    assert code == 2 and "name=value" in err
    code, _, err = run_cli(capsys, "send", "--config", str(tmp_path / "missing.json"), "a=1")
    assert code == 2 and "cannot read" in err


def test_send_prints_byte_downlinks_as_base64url(capsys, tmp_path, emulator):
    pytest.importorskip("kpnthings.client")
    config = write_config(tmp_path / "c.json", emulator.url)
    emulator.emulator.queue_downlink(UUID, b'[{"n":"blob","vd":"aG9paG9pAA"}]')
    code, out, _ = run_cli(capsys, "send", "--config", config, "t=1")
    assert code == 0
    assert json.loads(fields(out)["downlink"])[0]["vd"] == "aG9paG9pAA"


@pytest.fixture
def tls_files(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    files = {
        "cert": tmp_path / "server.pem",
        "key": tmp_path / "server.key",
        "ca_pem": tmp_path / "ca.pem",
        "ca_der": tmp_path / "ca.der",
    }
    cert.private_key_and_cert_chain_pem.write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["ca_pem"]))
    files["ca_der"].write_bytes(ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()))
    return files


def test_mock_server_serves_https_and_send_verifies_it(capsys, tmp_path, tls_files):
    pytest.importorskip("kpnthings.client")
    proc = start_mock_server(
        tmp_path,
        "--device",
        "%s:%s" % (UUID, SECRET),
        "--tls-cert",
        str(tls_files["cert"]),
        "--tls-key",
        str(tls_files["key"]),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        m = re.match(r"^KPN Things emulator listening on (https://127\.0\.0\.1:\d+)$", line)
        assert m, line
        url = m.group(1)
        for ca in ("ca_der", "ca_pem"):
            config = tmp_path / ("%s.json" % ca)
            provision.write_config(
                config,
                {
                    "dvnuuid": UUID,
                    "secret": SECRET,
                    "url": url,
                    "board": "unix",
                    "ca_file": tls_files[ca].name,  # relative to the config's folder
                },
            )
            code, out, err = run_cli(capsys, "send", "--config", str(config), "t=1")
            assert code == 0, out + err
            assert fields(out)["outcome"] == "accepted"
        # ca_files are trusted too, beside ca_file (here an unrelated root), as on the board.
        import trustme

        other = tmp_path / "other.der"
        other.write_bytes(ssl.PEM_cert_to_DER_cert(trustme.CA().cert_pem.bytes().decode()))
        config = tmp_path / "two.json"
        provision.write_config(
            config,
            {
                "dvnuuid": UUID,
                "secret": SECRET,
                "url": url,
                "board": "unix",
                "ca_file": "other.der",
                "ca_files": ["ca.pem"],
            },
        )
        code, out, err = run_cli(capsys, "send", "--config", str(config), "t=1")
        assert code == 0 and fields(out)["outcome"] == "accepted", out + err
        # https with neither ca_file nor tls_insecure is refused before anything is sent.
        bare = write_config(tmp_path / "bare.json", url)
        code, out, err = run_cli(capsys, "send", "--config", bare, "t=1")
        assert code == 2 and out == "" and err
        assert SECRET not in err
    finally:
        code, out, err = stop(proc)
    assert code == 0 and SECRET not in out + err
