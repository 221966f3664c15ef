"""Verified TLS (issue 5.1) under CPython and the MicroPython unix port (mbedTLS).

A test CA made by trustme signs the local HTTPS server's certificate. The client must accept it
only with that CA (as DER), refuse an unrelated CA and a certificate for another name, refuse to
start without a CA unless told to skip verification, and connect when told to skip it.

Several CAs (issue 19: the next root deployed before the server switches to it): DER bytes with
several certificates back to back, or a list of DER files (what the firmware makes of ca_file
and ca_files), trust every certificate in them, on both interpreters. MicroPython's mbedTLS
loads only the first certificate of a DER buffer, so the client loads them one at a time.
"""

import ssl
from pathlib import Path

import pytest
import trustme
from _http_servers import RUNNERS, Server, answers, response

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
BODY = '[{"bn":"urn:dev:DVNUUID:%s:"},{"n":"temperature","u":"Cel","v":21.5}]' % UUID
RUNTIMES = sorted(RUNNERS)
KEY_TYPES = {"ecdsa": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}


def _der(ca, path):
    path.write_bytes(ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()))
    return str(path)


@pytest.fixture(params=sorted(KEY_TYPES))
def pki(request, tmp_path):
    kt = KEY_TYPES[request.param]
    ca = trustme.CA(key_type=kt)
    other_ca = trustme.CA(key_type=kt)
    return {
        "ca": ca,
        "ca_path": _der(ca, tmp_path / "ca.der"),
        "other_ca_path": _der(other_ca, tmp_path / "other_ca.der"),
        "good": ca.issue_cert("127.0.0.1", "localhost", key_type=kt),
        "wrong_name": ca.issue_cert("other.example", key_type=kt),
        "untrusted": other_ca.issue_cert("127.0.0.1", "localhost", key_type=kt),
        "pem_path": str(tmp_path / "ca.pem"),
        "tmp": tmp_path,
    }


def _server_context(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return ctx


def run(runtime, url, n=1, **kw):
    args = {"dvnuuid": UUID, "secret": SECRET, "url": url, "bodies": [BODY] * n, "timeout": 3}
    args.update(kw)
    return RUNNERS[runtime](args)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_right_ca_is_accepted_and_session_kept(runtime, pki):
    with Server(answers(response(200), response(200)), _server_context(pki["good"])) as srv:
        results = run(runtime, srv.url(), n=2, ca_path=pki["ca_path"])
    assert [(r["status"], r["outcome"], r["error"]) for r in results] == [
        (200, "accepted", None),
        (200, "accepted", None),
    ]
    assert srv.connections == 1  # both uplinks over one TLS session
    assert srv.requests[0][1] == BODY.encode()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrong_ca_is_refused(runtime, pki):
    with Server(answers(response(200)), _server_context(pki["untrusted"])) as srv:
        (r,) = run(runtime, srv.url(), ca_path=pki["ca_path"])
    assert (r["status"], r["outcome"]) == (None, "retry")
    assert "TLS" in r["error"]
    assert srv.requests == []  # not one byte of the uplink reached the impostor


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_other_ca_does_not_vouch_for_server(runtime, pki):
    # The mirror case: the device trusts only an unrelated CA.
    with Server(answers(response(200)), _server_context(pki["good"])) as srv:
        (r,) = run(runtime, srv.url(), ca_path=pki["other_ca_path"])
    assert (r["status"], r["outcome"]) == (None, "retry")
    assert "TLS" in r["error"]
    assert srv.requests == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_hostname_mismatch_is_refused(runtime, pki):
    with Server(answers(response(200)), _server_context(pki["wrong_name"])) as srv:
        (r,) = run(runtime, srv.url(), ca_path=pki["ca_path"])
    assert (r["status"], r["outcome"]) == (None, "retry")
    assert "TLS" in r["error"]
    assert srv.requests == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_no_ca_and_no_opt_out_is_a_clear_error(runtime):
    out = run(runtime, "https://127.0.0.1:1")
    assert out == {
        "construct_error": "TLS needs a CA certificate (config 'ca_file') or an explicit "
        "'tls_insecure': true"
    }


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_pem_ca_is_refused_with_a_hint(runtime, pki):
    # Boards get DER (the unix port rejects PEM CA data); a PEM file must fail loudly at start.
    pki["ca"].cert_pem.write_to_path(pki["pem_path"])
    out = run(runtime, "https://127.0.0.1:1", ca_path=pki["pem_path"])
    assert "DER" in out["construct_error"]
    assert "ca_file" in out["construct_error"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_insecure_opt_out_connects(runtime, pki):
    with Server(answers(response(200)), _server_context(pki["untrusted"])) as srv:
        (r,) = run(runtime, srv.url(), insecure=True)
    assert (r["status"], r["outcome"], r["error"]) == (200, "accepted", None)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stalled_handshake_ends_at_deadline(runtime):
    # TCP accepts, but the server never speaks TLS.
    def silent(conn, server):
        server.stopping.wait(30)

    with Server(silent) as srv:
        (r,) = run(runtime, "https://127.0.0.1:%d" % srv.port, insecure=True, timeout=1)
    assert (r["status"], r["outcome"]) == (None, "retry")
    assert "timed out" in r["error"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_plain_http_server_behind_https_url(runtime):
    def plain(conn, server):
        conn.recv(1024)
        server.send(conn, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with Server(plain) as srv:
        (r,) = run(runtime, "https://127.0.0.1:%d" % srv.port, insecure=True)
    assert (r["status"], r["outcome"]) == (None, "retry")
    assert r["error"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_https_emulator_with_right_ca(runtime, pki, tmp_path):
    emu_mod = pytest.importorskip("kpnthings_tools.emulator")
    emu = emu_mod.Emulator(tmp_path / "emu.sqlite3", {UUID: SECRET})
    srv = emu.serve("127.0.0.1", 0, ssl_context=_server_context(pki["good"]))
    try:
        assert srv.url.startswith("https://")
        results = run(runtime, srv.url, n=2, ca_path=pki["ca_path"])
        stored = emu.messages(UUID)
    finally:
        srv.shutdown()
    assert [(r["status"], r["outcome"]) for r in results] == [(200, "accepted")] * 2
    assert [m["body"] for m in stored] == [BODY, BODY]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_der_bytes_with_several_certificates_trust_each(runtime, pki):
    # The server's root second in the bundle: before, MicroPython loaded the first one only.
    bundle = pki["tmp"] / "bundle.der"
    bundle.write_bytes(Path(pki["other_ca_path"]).read_bytes() + Path(pki["ca_path"]).read_bytes())
    with Server(answers(response(200)), _server_context(pki["good"])) as srv:
        (r,) = run(runtime, srv.url(), ca_path=str(bundle))
    assert (r["status"], r["outcome"], r["error"]) == (200, "accepted", None)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_list_of_ca_files_trusts_each_and_no_other(runtime, pki):
    with Server(answers(response(200)), _server_context(pki["good"])) as srv:
        (r,) = run(runtime, srv.url(), ca_paths=[pki["other_ca_path"], pki["ca_path"]])
    assert (r["status"], r["outcome"], r["error"]) == (200, "accepted", None)
    with Server(answers(response(200)), _server_context(pki["good"])) as srv:
        (r,) = run(runtime, srv.url(), ca_paths=[pki["other_ca_path"]])
    assert (r["status"], r["outcome"]) == (None, "retry") and "TLS" in r["error"]
    assert srv.requests == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_cut_bundle_or_a_missing_ca_file_stops_at_start(runtime, pki):
    cut = pki["tmp"] / "cut.der"
    data = Path(pki["ca_path"]).read_bytes()
    cut.write_bytes(data + data[:100])  # a second certificate cut short
    out = run(runtime, "https://127.0.0.1:1", ca_path=str(cut))
    assert "DER" in out["construct_error"] and "ca_files" in out["construct_error"]
    missing = str(pki["tmp"] / "missing.der")
    out = run(runtime, "https://127.0.0.1:1", ca_paths=[pki["ca_path"], missing])
    assert out == {"construct_error": "CA file %s: cannot read it" % missing}
