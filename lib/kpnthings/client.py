"""The uplink to KPN Things over HTTP(S): sign a SenML body, POST it, classify the answer.

`Client.send` never raises for anything the network or the server does: it returns a `Result`
whose `outcome` is one of the classes of the README's response table (Reliability), which is
what the firmware and the outbox act on. Several sends reuse one (TLS) connection while the
server keeps it open. MQTT offers the same `send(body) -> Result` shape (mqtt_transport).
"""

from kpnthings import auth

ACCEPTED = "accepted"
MALFORMED = "malformed"
UNAUTHORIZED = "unauthorized"
UNKNOWN_DEVICE = "unknown device"
RETRY = "retry"

INGESTION_PATH = "/ingestion/ip/senml/v1"


class Result:
    """What became of one uplink.

    `status`: the HTTP status, or None when no HTTP answer came. `outcome`: one of the module's
    outcome constants. `downlink`: records decoded from a 2xx body, or []. `error`: short text
    when something went wrong (a refused downlink included), else None.

    An answer that did not arrive whole (truncated, over `max_response`, past the deadline) is
    RETRY even when its status line said 2xx: the message stays in the outbox, because KPN's
    answers are small and a broken one means something between device and KPN misbehaves.
    `status` then still shows the status line that did arrive.
    """

    def __init__(self, status, outcome, downlink=None, error=None):
        self.status = status
        self.outcome = outcome
        self.downlink = downlink if downlink is not None else []
        self.error = error

    def __repr__(self):
        return "<Result %s %s, %d downlink records%s>" % (
            self.status,
            self.outcome,
            len(self.downlink),
            ", error: " + self.error if self.error else "",
        )


def outcome_for(status):
    """The class of the README's response table for an HTTP status."""
    if 200 <= status < 300:
        return ACCEPTED
    if status == 401 or status == 403:
        return UNAUTHORIZED
    if status == 404:
        return UNKNOWN_DEVICE
    if status == 408 or status == 429 or status >= 500:
        return RETRY
    if 400 <= status < 500:
        return MALFORMED
    # 1xx never gets here; 3xx means a wrong URL or a proxy: keep the message and retry later.
    return RETRY


def body_bytes(pack_or_bytes):
    """The exact bytes to send and sign: bytes, bytearray or memoryview as given (no copy: the
    device's pack buffer goes out as it is), str as UTF-8, a Pack encoded once."""
    body = pack_or_bytes
    if isinstance(body, (bytes, bytearray, memoryview)):
        return body
    if not isinstance(body, str):
        body = body.encode()
    if isinstance(body, str):
        body = body.encode()
    return body


class Client:
    """Signs and POSTs SenML packs for one device.

    `timeout` (seconds) bounds each request as a whole; keep it below the watchdog period.
    `cadata` is the CA bundle as DER bytes (one certificate or several back to back), or a list
    of paths of such files, read whenever a TLS context is made (kpnthings.dial); https needs it
    unless `insecure` is true, which skips certificate verification (the firmware warns at every
    boot). `addresses` is a list the
    caller keeps to cache the server's address across clients (kpnthings.dial.open_socket).
    `connect` is for tests.
    """

    def __init__(
        self,
        dvnuuid,
        secret,
        url="https://prod.dm.kpnthings.com",
        timeout=5,
        cadata=None,
        insecure=False,
        max_response=4096,
        connect=None,
        addresses=None,
    ):
        from kpnthings import http_client

        self.dvnuuid = auth.check_dvnuuid(dvnuuid)
        self._secret = auth.check_secret(secret)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        # The URL and the TLS context are worked out once, at boot, by kpnthings.dial.
        from kpnthings import dial, unload

        try:
            tls, host, port, prefix = dial.split_url(url)
            context = None
            if tls and (connect is None or not (insecure or cadata)):
                # With an injected transport only the rule is checked: tests see the same error.
                context = dial.make_tls_context(cadata, insecure)
        finally:
            unload("dial")
        self.url = url
        self.base_name = auth.base_name(self.dvnuuid)
        self._path = prefix + INGESTION_PATH
        self.insecure = bool(insecure) and tls
        self._conn = http_client.Connection(
            host,
            port,
            tls_context=context,
            timeout_ms=int(timeout * 1000),
            max_response=max_response,
            connect=connect,
            addresses=addresses,
        )

    def __repr__(self):
        # Deliberately without the secret.
        return "<Client %s %s%s>" % (
            self.dvnuuid,
            self.url,
            " (TLS unverified)" if self.insecure else "",
        )

    __str__ = __repr__

    def send(self, pack_or_bytes):
        """POST one body (bytes, str, or an object with .encode() such as senml.Pack)."""
        from kpnthings import http_client

        body = body_bytes(pack_or_bytes)
        headers = (
            ("Content-Type", "application/json"),
            ("Things-Message-Token", auth.message_token(body, self._secret)),
        )
        try:
            # body: bytes, bytearray or memoryview, signed and sent as it is
            response = self._conn.request("POST", self._path, headers, body)  # pyright: ignore[reportArgumentType]
        except http_client.HTTPError as e:
            return Result(e.status, RETRY, None, str(e) or "request failed")
        status = response.status
        outcome = outcome_for(status)
        if outcome != ACCEPTED:
            return Result(status, outcome, None, "HTTP %d" % status)
        return _with_downlink(status, response.body)

    def close(self):
        """Close the kept-alive connection, if any; the next send reconnects."""
        self._conn.close()


def _with_downlink(status, body):
    # An empty body (or only white space) means no downlink is pending.
    if not body.strip():
        return Result(status, ACCEPTED)
    # The parser is loaded for this answer only: most answers carry no downlink.
    from kpnthings import senml_decode, unload

    try:
        records = senml_decode.decode(body)
    except Exception as e:
        return Result(
            status, ACCEPTED, None, "downlink refused: %s" % (str(e)[:120] or type(e).__name__)
        )
    finally:
        unload("senml_decode", "senml_check")
    return Result(status, ACCEPTED, records)
