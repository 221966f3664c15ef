"""`kpnthings ca`: the root CA certificate a board needs for a server, fetched and checked from
the host, with the host's own network and trust store.

    kpnthings ca HOST[:PORT] [--out ca.der] [--trust-store FILE]
        connects to the server with Python's ssl, verifies its chain against the trust store
        (the system's, or FILE: PEM or DER), and writes the root that anchors it as DER: a
        server sends its leaf and intermediates, rarely its root, so the root comes from the
        store. A server that sends a self-signed root the store does not know gets that root
        written, with a warning to compare its fingerprint. Prints subject, expiry, SHA-256.
    kpnthings ca --check FILE [--check FILE ...] HOST[:PORT]
        verifies the server against the DER files only, loaded one certificate at a time as the
        board loads ca_file and ca_files (kpnthings.dial), and says which certificate anchors it.

The board verifies with mbedTLS, this with OpenSSL: both check the chain up to a root the
device trusts, the name and the dates, so a file that passes here is the file the board needs.
"""

import hashlib
import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PORT = 443
DEFAULT_TIMEOUT_S = 10.0
# OpenSSL's verify codes after which the chain itself is fine but its root is unknown to the
# store: the leaf is self-signed (18), the server sent a self-signed root (19), or the last
# certificate's issuer is not in the store (20, 2). Anything else (a wrong name, an expired
# certificate) is a broken server, and no root is fetched from it.
_ROOT_UNKNOWN = (2, 18, 19, 20)
_SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
}


class CAError(Exception):
    """Something the user must fix or know; the message says what."""


def split_der(data):
    """The DER certificates in `data`, one or more back to back, cut as the board cuts them
    (kpnthings.dial.make_tls_context); ValueError if the bytes are not that."""
    data = bytes(data)
    out = []
    i = 0
    while i < len(data):
        n = 0
        if data[i] == 0x30 and i + 4 <= len(data):
            k = data[i + 1] - 0x80
            if 0 < k < 4:
                n = int.from_bytes(data[i + 2 : i + 2 + k], "big") + 2 + k
        if n < 4 or i + n > len(data):
            raise ValueError("no DER certificate at byte %d" % i)
        out.append(data[i : i + n])
        i += n
    if not out:
        raise ValueError("the file is empty")
    return out


def read_der_file(path):
    """The DER certificates in the file at `path`; CAError says what is wrong with it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CAError("cannot read %s: %s" % (path, e.strerror)) from None
    if b"-----BEGIN" in data[:64]:
        raise CAError(
            "%s is PEM; the board needs DER. Convert it: openssl x509 -in %s -outform DER -out %s"
            % (path, path, path.with_suffix(".der"))
        )
    try:
        ders = split_der(data)
        for der in ders:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=der)
    except (ValueError, ssl.SSLError) as e:
        raise CAError("%s is not DER certificates: %s" % (path, e)) from None
    return ders


def ca_infos(ders):
    """{DER bytes: certificate fields} for the CA certificates among `ders` (a certificate that
    is no CA, such as a server's own, is left out: it cannot anchor another server's chain)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for der in ders:
        ctx.load_verify_locations(cadata=der)
    return dict(zip(ctx.get_ca_certs(binary_form=True), ctx.get_ca_certs(), strict=True))


def parse_target(text):
    """(host, port) of HOST, HOST:PORT, [IPv6]:PORT or an https:// URL."""
    split = urlsplit(text if "//" in text else "//" + text)
    if split.scheme not in ("", "https") or not split.hostname:
        raise CAError("%s: give HOST, HOST:PORT or https://HOST[:PORT]" % text)
    try:
        port = split.port or DEFAULT_PORT
    except ValueError:
        raise CAError("%s: the port must be a number from 1 to 65535" % text) from None
    return split.hostname, port


def name_text(name):
    """A certificate name from ssl's certificate fields as `CN=..., O=..., C=...`."""
    parts = []
    for rdn in name or ():
        for key, value in rdn:
            parts.append("%s=%s" % (_SHORT.get(key, key), value))
    return ", ".join(parts) or "(empty)"


def expiry_text(info, now=None):
    """`2038-01-19 (in 4400 days)` or `2020-01-01 (EXPIRED 300 days ago)`."""
    end = ssl.cert_time_to_seconds(info["notAfter"])
    days = int((end - (time.time() if now is None else now)) // 86400)
    date = time.strftime("%Y-%m-%d", time.gmtime(end))
    if days < 0:
        return "%s (EXPIRED %d days ago)" % (date, -days)
    return "%s (in %d days)" % (date, days)


def fingerprint(der):
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _connect(host, port, context, timeout):
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise CAError("cannot connect to %s:%d: %s" % (host, port, e.strerror or e)) from None
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def _chain(tls, verified):
    """The peer's chain as ssl certificate objects (.public_bytes(), .get_info()), leaf first.

    Python 3.13 made SSLSocket.get_verified_chain() and get_unverified_chain() public, as DER
    only; the objects with their fields are those of the socket's _sslobj, which has had both
    methods since 3.10 (bpo-18233)."""
    name = "get_verified_chain" if verified else "get_unverified_chain"
    method = getattr(getattr(tls, "_sslobj", None), name, None)
    if method is None:
        raise CAError("this Python cannot read a server's certificate chain (3.10 or later can)")
    return list(method() or ())


def _der(cert):
    return ssl.PEM_cert_to_DER_cert(cert.public_bytes())


def trust_context(trust_store=None):
    """A verifying client context: the system's trust store, or only the certificates in the
    file `trust_store` (PEM, or DER certificates back to back)."""
    if trust_store is None:
        return ssl.create_default_context()
    path = Path(trust_store)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CAError("--trust-store %s: %s" % (path, e.strerror)) from None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            ctx.load_verify_locations(cadata=data.decode("ascii", "replace"))
        else:
            for der in split_der(data):
                ctx.load_verify_locations(cadata=der)
    except (ValueError, ssl.SSLError) as e:
        raise CAError("--trust-store %s holds no usable certificate: %s" % (path, e)) from None
    return ctx


class Root:
    """The root a server's chain ends at: `der`, `info` (ssl's certificate fields), `trusted`
    (False: the server sent it self-signed and the trust store does not know it), `sent` (how
    many certificates the server sent)."""

    def __init__(self, der, info, trusted, sent):
        self.der = der
        self.info = info
        self.trusted = trusted
        self.sent = sent


def fetch_root(host, port, trust_store=None, timeout=DEFAULT_TIMEOUT_S):
    """The Root that anchors the chain of host:port; CAError when there is none to take."""
    try:
        with _connect(host, port, trust_context(trust_store), timeout) as tls:
            chain = _chain(tls, True)
            sent = len(_chain(tls, False))
        root = chain[-1]
        return Root(_der(root), root.get_info(), True, sent)
    except ssl.SSLCertVerificationError as e:
        if e.verify_code not in _ROOT_UNKNOWN:
            raise CAError(
                "%s:%d failed verification: %s" % (host, port, e.verify_message)
            ) from None
    except (ssl.SSLError, OSError) as e:
        raise CAError("TLS with %s:%d failed: %s" % (host, port, e)) from None
    # The chain is sound but its root is not in the store: look at what the server sent.
    anyone = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anyone.check_hostname = False
    anyone.verify_mode = ssl.CERT_NONE
    try:
        with _connect(host, port, anyone, timeout) as tls:
            chain = _chain(tls, False)
    except (ssl.SSLError, OSError) as e:
        raise CAError("TLS with %s:%d failed: %s" % (host, port, e)) from None
    last = chain[-1].get_info()
    if last["subject"] != last["issuer"]:
        raise CAError(
            "the chain of %s:%d ends at a certificate issued by %s, which is not in the trust "
            "store: get that root from the server's operator (or pass --trust-store FILE with "
            "it) and run this again" % (host, port, name_text(last["issuer"]))
        )
    return Root(_der(chain[-1]), last, False, len(chain))


def save_der(path, der, force=False):
    """Write `der` to `path`; a different existing file is kept unless force. Returns whether
    the file changed."""
    path = Path(path)
    if path.exists():
        if path.read_bytes() == der:
            return False
        if not force:
            raise CAError(
                "%s exists and holds another certificate; pass --force to replace it" % path
            )
    path.write_bytes(der)
    return True


class Check:
    """The outcome of check(): `ok`, `anchor` (the DER that anchors the chain, when ok) and
    `file_of` it, `error` (why not), `cas` ({DER: fields} of the files' CA certificates) and
    `chain_issuer` (fields of the last certificate the server sent, when it failed)."""

    def __init__(self, ok, anchor=None, file_of=None, error=None, cas=None, chain_end=None):
        self.ok = ok
        self.anchor = anchor
        self.file_of = file_of
        self.error = error
        self.cas = cas or {}
        self.chain_end = chain_end


def check(files, host, port, timeout=DEFAULT_TIMEOUT_S):
    """Verify host:port against the certificates in the DER `files` alone, loaded one by one
    as the board loads them. CAError for a file that is no DER or a server out of reach."""
    ders = []
    owner = {}
    for path in files:
        for der in read_der_file(path):
            ders.append(der)
            owner.setdefault(der, str(path))
    cas = ca_infos(ders)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # host name and chain checked, as on a board
    for der in ders:
        ctx.load_verify_locations(cadata=der)
    try:
        with _connect(host, port, ctx, timeout) as tls:
            anchor = _der(_chain(tls, True)[-1])
        return Check(True, anchor, owner.get(anchor), cas=cas)
    except ssl.SSLCertVerificationError as e:
        error = e.verify_message
    except (ssl.SSLError, OSError) as e:
        raise CAError("TLS with %s:%d failed: %s" % (host, port, e)) from None
    anyone = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anyone.check_hostname = False
    anyone.verify_mode = ssl.CERT_NONE
    chain_end = None
    try:
        with _connect(host, port, anyone, timeout) as tls:
            chain = _chain(tls, False)
        chain_end = chain[-1].get_info() if chain else None
    except (ssl.SSLError, OSError, CAError):
        pass  # the verdict stands; this only says more about it
    return Check(False, error=error, cas=cas, chain_end=chain_end)
