"""Dialling a server: DNS, TCP connect and the TLS handshake, each bounded by one deadline;
the TLS context that verifies the server (kpnthings.http_client's and kpnthings.mqtt's); and the
server's URL taken apart.

Loaded when a connection is opened and dropped again after (a kept-alive connection is opened
once in many requests), and at boot for the TLS context.
"""

from kpnthings.compat import ticks_diff, ticks_ms
from kpnthings.socket_io import (
    HTTPError,
    HTTPTimeout,
    SocketTransport,
    _blocked_on,
    _describe,
    _err,
)


def _resolve(host, port, deadline):
    import socket

    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except OSError as e:
        raise _err(HTTPError, "DNS lookup of %s failed: %s" % (host, _describe(e))) from None
    if not infos:
        raise _err(HTTPError, "DNS lookup of %s found no address" % host)
    if ticks_diff(deadline, ticks_ms()) <= 0:
        raise _err(HTTPTimeout, "timed out resolving %s" % host)
    return infos[0]


def open_socket(host, port, tls_context, deadline, addresses=None):
    """Connect to host:port, with TLS when `tls_context` is given, before `deadline`.

    `addresses`, a list the caller keeps from one connection to the next, caches the address:
    a lookup is the one step no deadline can cut short (lwIP retries for about 7 s per DNS
    server, longer than the RP2040's watchdog waits), so it is done once, and again only after
    a connection to the cached address failed."""
    import errno
    import select
    import socket

    if addresses:
        info = addresses[0]
    else:
        info = _resolve(host, port, deadline)
        if addresses is not None:
            addresses.append(info)
    family, type_, proto, _, addr = info
    sock = socket.socket(family, type_, proto)
    transport = None
    try:
        sock.setblocking(False)
        try:
            sock.connect(addr)
        except OSError as e:
            code = e.args[0] if e.args else None
            if code not in (errno.EINPROGRESS, errno.EAGAIN) and not _blocked_on(e):
                msg = "connect to %s:%d failed: %s" % (host, port, _describe(e))
                raise _err(HTTPError, msg) from None
        transport = SocketTransport(sock)
        ev = transport.wait(select.POLLOUT, deadline)
        if ev & (select.POLLERR | select.POLLHUP):
            # Linux and lwIP both flag a refused connect this way; MicroPython has no SO_ERROR.
            raise _err(HTTPError, "connect to %s:%d refused" % (host, port))
        if tls_context is not None:
            try:
                wrapped = tls_context.wrap_socket(
                    sock, server_hostname=host, do_handshake_on_connect=False
                )
            except (OSError, ValueError) as e:
                raise _err(HTTPError, "TLS setup failed: %s" % _describe(e)) from None
            sock = wrapped
            transport = SocketTransport(wrapped)
            transport.handshake(deadline)
        return transport
    except BaseException:
        if addresses:
            del addresses[:]  # the server may have moved: look it up again next time
        if transport is not None:
            transport.close()
        try:
            sock.close()
        except (OSError, ValueError):
            pass
        raise


def make_tls_context(cadata=None, insecure=False):
    """An SSL context that verifies the server against `cadata`, or, only when `insecure` is
    true, verifies nothing. `cadata` is DER bytes, one certificate or several back to back, or
    a list of paths of such files (what kpnthings.wiring makes of ca_file and ca_files), read
    now: so the CAs take no heap between connections. Every certificate is trusted. Raises
    ValueError for a missing or unusable CA."""
    if insecure:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # CPython refuses CERT_NONE while check_hostname is on; MicroPython has no such flag.
        if hasattr(ctx, "check_hostname"):
            setattr(ctx, "check_hostname", False)  # noqa: B010 - absent from MicroPython stubs
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if not cadata:
        raise ValueError(
            "TLS needs a CA certificate (config 'ca_file') or an explicit 'tls_insecure': true"
        )
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    for data in cadata if type(cadata) is list else [cadata]:
        if type(data) is str:
            try:
                with open(data, "rb") as f:
                    data = f.read()
            except OSError:
                raise ValueError("CA file %s: cannot read it" % data) from None
        data = bytes(data)
        end = len(data)
        i = 0
        try:
            # MicroPython's mbedTLS reads one DER certificate per call and ignores what follows
            # (mbedtls_x509_crt_parse: "either one DER certificate or one or more PEM"), but
            # each call adds to the certificates loaded before (extmod/modtls_mbedtls.c): so a
            # bundle is cut at each certificate's DER length and loaded one at a time.
            while i < end:
                n = 0
                if data[i] == 0x30 and i + 4 <= end:  # a DER SEQUENCE
                    k = data[i + 1] - 0x80  # its length in the next k bytes (a certificate is
                    # longer than 127 bytes, so its length always takes the long form)
                    if 0 < k < 4:
                        n = int.from_bytes(data[i + 2 : i + 2 + k], "big") + 2 + k
                if n < 4 or i + n > end:
                    raise ValueError("no DER certificate at byte %d" % i)
                ctx.load_verify_locations(cadata=data if n == end else data[i : i + n])
                i += n
        except (OSError, ValueError) as e:
            msg = "CA certificate (config 'ca_file', 'ca_files') must be DER: %s" % _describe(e)
            raise ValueError(msg) from None
    return ctx


def split_url(url):
    """(tls, host, port, path prefix) of an http:// or https:// URL; ValueError names the field."""
    if not isinstance(url, str):
        raise ValueError("url must be a string like https://prod.dm.kpnthings.com")
    if url.startswith("https://"):
        tls, rest, port = True, url[8:], 443
    elif url.startswith("http://"):
        tls, rest, port = False, url[7:], 80
    else:
        raise ValueError("url must start with https:// or http://")
    slash = rest.find("/")
    if slash < 0:
        hostport, prefix = rest, ""
    else:
        hostport, prefix = rest[:slash], rest[slash:].rstrip("/")
    if "@" in hostport or "?" in prefix or "#" in prefix:
        raise ValueError("url must hold only scheme, host, port and path")
    host = hostport
    if hostport.startswith("["):
        raise ValueError("url: IPv6 literals are not supported, use a host name")
    colon = hostport.rfind(":")
    if colon >= 0:
        host = hostport[:colon]
        digits = hostport[colon + 1 :]
        if not digits or not all("0" <= c <= "9" for c in digits) or not 0 < int(digits) < 65536:
            raise ValueError("url has a bad port")
        port = int(digits)
    if not host or " " in host:
        raise ValueError("url has no host")
    for ch in url:
        if ch <= " " or ch == "\x7f":
            raise ValueError("url must not hold spaces or control characters")
    return tls, host, port, prefix
