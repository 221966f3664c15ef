"""`kpnthings ca` against local TLS servers with a test PKI (issue 19, item 5).

Two roots stand for KPN's current root and the next one: each signs an intermediate that signs
a certificate for 127.0.0.1, and each server sends its leaf and intermediate, not its root, as
public servers do. The system trust store cannot be changed in a test, so --trust-store names
the file that plays it.
"""

import ssl

import pytest
import trustme
from _cli_support import fields, run_cli
from _http_servers import Server

from kpnthings_tools import ca


def _der(a_ca):
    return ssl.PEM_cert_to_DER_cert(a_ca.cert_pem.bytes().decode())


class Pki:
    """A root, its intermediate, and a server certificate under them (for 127.0.0.1)."""

    def __init__(self, name, *names):
        self.root = trustme.CA(organization_name=name)
        self.intermediate = self.root.create_child_ca()
        self.leaf = self.intermediate.issue_cert(*(names or ("127.0.0.1", "localhost")))
        self.root_der = _der(self.root)

    def server_context(self, folder=None):
        """Sends the leaf and the intermediate; with `folder`, the root too (written there)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if folder is None:
            self.leaf.configure_cert(ctx)
            return ctx
        chain = folder / "chain.pem"
        chain.write_bytes(
            b"".join(p.bytes() for p in self.leaf.cert_chain_pems) + self.root.cert_pem.bytes()
        )
        key = folder / "key.pem"
        key.write_bytes(self.leaf.private_key_pem.bytes())
        ctx.load_cert_chain(str(chain), str(key))
        return ctx


@pytest.fixture(scope="module")
def now():
    return Pki("KPN Test Root 2024")


@pytest.fixture(scope="module")
def nxt():
    return Pki("KPN Test Root 2034")


def _handshake_only(conn, server):
    """Complete the handshake (done by Server) and wait for the client to hang up."""
    try:
        while conn.recv(1024):
            pass
    except (OSError, ssl.SSLError):
        pass


def _serve(pki, folder=None):
    return Server(_handshake_only, pki.server_context(folder))


def _fetch(capsys, srv, store, out_file, *more):
    """`kpnthings ca` against the test server, with a trust store and an output file."""
    target = "127.0.0.1:%d" % srv.port
    return run_cli(capsys, "ca", target, "--trust-store", str(store), "--out", str(out_file), *more)


def test_fetch_writes_the_root_from_the_trust_store_as_der(capsys, tmp_path, now, nxt):
    store = tmp_path / "store.pem"  # the "system" store: both roots, in PEM as stores are
    store.write_bytes(now.root.cert_pem.bytes() + nxt.root.cert_pem.bytes())
    out_file = tmp_path / "ca.der"
    with _serve(now) as srv:
        code, out, err = _fetch(capsys, srv, store, out_file)
    assert code == 0, err
    assert out_file.read_bytes() == now.root_der  # the root, though the server never sent it
    got = fields(out)
    assert got["root"].startswith("O=KPN Test Root 2024, OU="), out
    assert got["expires"][:4].isdigit() and "days)" in got["expires"]
    assert got["sha256"] == ca.fingerprint(now.root_der)
    assert got["host"] == "127.0.0.1:%d (sent 2 certificates)" % srv.port
    assert got["trusted"].startswith("yes")
    assert "wrote" in got and err == ""
    # The file it wrote verifies the same server, and the other root does not.
    nxt_file = tmp_path / "next.der"
    nxt_file.write_bytes(nxt.root_der)
    with _serve(now) as srv:
        code, out, _ = run_cli(capsys, "ca", "--check", str(out_file), "127.0.0.1:%d" % srv.port)
        assert code == 0, out
        assert "ok:" in out and str(out_file) in out and "KPN Test Root 2024" in out
        code, out, _ = run_cli(capsys, "ca", "--check", str(nxt_file), "127.0.0.1:%d" % srv.port)
    assert code == 1
    assert "FAILED:" in out and "KPN Test Root 2034" in out  # what the file trusts
    assert "issued by" in out  # and where the server's chain ends


def test_check_loads_several_files_together_as_the_board_does(capsys, tmp_path, now, nxt):
    a, b = tmp_path / "ca.der", tmp_path / "ca-next.der"
    a.write_bytes(now.root_der)
    b.write_bytes(nxt.root_der)
    both = tmp_path / "both.der"
    both.write_bytes(now.root_der + nxt.root_der)  # one file, two certificates back to back
    with _serve(nxt) as srv:  # the server after the switch
        host = "127.0.0.1:%d" % srv.port
        code, out, _ = run_cli(capsys, "ca", "--check", str(a), "--check", str(b), host)
        assert code == 0, out
        assert "from %s" % b in out and out.count("trusts:") == 2
        code, out, _ = run_cli(capsys, "ca", "--check", str(both), host)
        assert code == 0, out
        code, out, _ = run_cli(capsys, "ca", "--check", str(a), host)
    assert code == 1, out


def test_check_refuses_pem_and_junk_before_connecting(capsys, tmp_path, now):
    pem = tmp_path / "ca.pem"
    pem.write_bytes(now.root.cert_pem.bytes())
    code, _, err = run_cli(capsys, "ca", "--check", str(pem), "127.0.0.1:1")
    assert code == 2 and "PEM" in err and "-outform DER" in err
    junk = tmp_path / "junk.der"
    junk.write_bytes(now.root_der[:-10])  # cut short: what a broken download leaves
    code, _, err = run_cli(capsys, "ca", "--check", str(junk), "127.0.0.1:1")
    assert code == 2 and "not DER certificates" in err


def test_a_root_outside_the_store_is_not_written(capsys, tmp_path, now, nxt):
    store = tmp_path / "store.der"
    store.write_bytes(now.root_der)  # DER works as a store too
    out_file = tmp_path / "ca.der"
    with _serve(nxt) as srv:
        code, out, err = _fetch(capsys, srv, store, out_file)
    assert code == 2 and out == ""
    assert "not in the trust store" in err and "KPN Test Root 2034" in err
    assert not out_file.exists()


def test_a_self_signed_root_the_server_sends_is_written_with_a_warning(capsys, tmp_path, now, nxt):
    store = tmp_path / "store.der"
    store.write_bytes(now.root_der)
    out_file = tmp_path / "ca.der"
    with _serve(nxt, tmp_path) as srv:
        code, out, err = _fetch(capsys, srv, store, out_file)
    assert code == 0, err
    assert out_file.read_bytes() == nxt.root_der
    assert fields(out)["trusted"].startswith("NO")
    assert "NOT verified" in err and "sha256" in err


def test_a_server_with_a_wrong_name_gives_no_root(capsys, tmp_path):
    other = Pki("KPN Test Root 2024", "other.example")
    store = tmp_path / "store.der"
    store.write_bytes(other.root_der)
    out_file = tmp_path / "ca.der"
    with _serve(other) as srv:
        code, _, err = _fetch(capsys, srv, store, out_file)
    assert code == 2 and "failed verification" in err and "mismatch" in err.lower(), err
    assert not out_file.exists()


def test_an_existing_different_file_is_kept_without_force(capsys, tmp_path, now):
    store = tmp_path / "store.der"
    store.write_bytes(now.root_der)
    out_file = tmp_path / "ca.der"
    out_file.write_bytes(b"\x30old")
    with _serve(now) as srv:
        code, _, err = _fetch(capsys, srv, store, out_file)
        assert code == 2 and "--force" in err and out_file.read_bytes() == b"\x30old"
        code, _, err = _fetch(capsys, srv, store, out_file, "--force")
    assert code == 0, err
    assert out_file.read_bytes() == now.root_der


def test_nothing_listening_is_a_clear_error(capsys, tmp_path):
    from _http_servers import closed_port

    code, _, err = run_cli(capsys, "ca", "127.0.0.1:%d" % closed_port(), "--timeout", "2")
    assert code == 2 and "cannot connect to 127.0.0.1" in err


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("prod.dm.kpnthings.com", ("prod.dm.kpnthings.com", 443)),
        ("prod.dm.kpnthings.com:8883", ("prod.dm.kpnthings.com", 8883)),
        ("https://prod.dm.kpnthings.com/ingestion/ip/senml/v1", ("prod.dm.kpnthings.com", 443)),
        ("[::1]:8443", ("::1", 8443)),
    ],
)
def test_targets(text, target):
    assert ca.parse_target(text) == target


def test_bad_targets():
    for text in ("http://x", "host:port", "host:70000", ""):
        with pytest.raises(ca.CAError):
            ca.parse_target(text)


def test_split_der_cuts_as_the_board_does(now, nxt):
    assert ca.split_der(now.root_der + nxt.root_der) == [now.root_der, nxt.root_der]
    for bad in (b"", b"\x30", now.root_der + b"\x00", now.root_der[:-1], b"\x30\x05hello"):
        with pytest.raises(ValueError):
            ca.split_der(bad)
