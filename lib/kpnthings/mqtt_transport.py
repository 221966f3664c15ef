"""MQTT as the uplink: the HTTPS `Client`'s `send(body) -> Result`, over `mqtt.MQTTClient`.

The device loop and the outbox cannot tell the two apart: `send` publishes the very bytes it is
given (the compact signed SenML pack) and returns

- ACCEPTED once the broker's PUBACK arrived (QoS 1; with mqtt_qos 0, once the bytes were written),
  so a reading leaves the outbox only when the broker has it;
- UNAUTHORIZED when the broker refuses the credentials (CONNACK 4 or 5): keep the data, retry on
  the long backoff, fix mqtt_username / mqtt_password in config.json;
- RETRY for everything else that went wrong (DNS, TCP, TLS, timeouts, a dropped link, backoff).

`status` is always None: there is no HTTP status over MQTT.

Downlinks: every PUBLISH on mqtt_downlink_topic is decoded with `senml.decode` and its records are
handed out in the `.downlink` of the next ACCEPTED Result, so they pass the same allow-list and
state echo as HTTPS downlinks. Between uplinks the loop may call `poll()`, which returns the
records that arrived meanwhile. A pack that fails to decode is reported in `.error`, never raised.
At most `max_downlinks` packs wait; older ones are dropped and counted in `dropped_downlinks`.
A subscription the broker refuses does not stop uplinks: it is reported in `.error` of every
ACCEPTED Result until a later connection's subscription succeeds.

Token (config `mqtt_token: true`): KPN's MQTT details are not in the documentation we hold, so
where the Things-Message-Token goes is config, not code. `mqtt_token_in: "topic"` puts it in the
uplink topic at `{token}` (or appends `/<token>`); `"wrapper"` sends
`{"token":"<64 hex>","body":<pack>}`. The token is computed over exactly the pack bytes.
"""

from kpnthings import auth, mqtt
from kpnthings.client import ACCEPTED, RETRY, UNAUTHORIZED, Result, body_bytes


def _read_file(path, field):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        raise ValueError("%s: cannot read %s" % (field, path)) from None


class MQTTTransport:
    """Uplink over MQTT for one device, configured by config.json's mqtt_* keys.

    `cfg` needs dvnuuid, secret (only used for the token) and the mqtt_* keys; timeout_s (default
    5) bounds each blocking step, tls_insecure skips certificate checks as for HTTPS. The CA
    (DER) comes from mqtt_ca_file if set, else `cadata` (what the firmware makes of ca_file and
    ca_files: the list of their paths; or DER bytes), else ca_file. `connect` is for tests (see
    MQTTClient).
    """

    def __init__(self, cfg, cadata=None, connect=None, max_downlinks=4):
        from kpnthings import mqtt_config

        s = mqtt_config.validate(dict(cfg))
        self._secret = s.get("secret")
        if s["mqtt_token"]:
            auth.check_secret(self._secret)
        self.topic = s["mqtt_uplink_topic"]
        self.downlink_topic = s["mqtt_downlink_topic"]
        self.qos = s["mqtt_qos"]
        self._token_in = s["mqtt_token_in"] if s["mqtt_token"] else None
        timeout_s = s.get("timeout_s", 5)
        tls_context = None
        if s["mqtt_tls"]:
            insecure = bool(s.get("tls_insecure", False))
            if s["mqtt_ca_file"] and not insecure:
                # The broker's own CA wins over the HTTPS one the firmware passes as cadata.
                cadata = _read_file(s["mqtt_ca_file"], "mqtt_ca_file")
            elif cadata is None and not insecure:
                if not s.get("ca_file"):
                    raise ValueError(
                        "mqtt_ca_file: TLS needs the broker's CA certificate as DER"
                        " (or mqtt_tls false for a local test broker)"
                    )
                cadata = _read_file(s["ca_file"], "ca_file")
            if connect is None:
                from kpnthings import dial, unload

                try:
                    tls_context = dial.make_tls_context(cadata, insecure)
                finally:
                    unload("dial")
        self._inbox = []
        self.max_downlinks = max_downlinks
        self.dropped_downlinks = 0
        self.downlink_error = None  # why the last refused downlink pack was refused, if any
        self.client = mqtt.MQTTClient(
            s["mqtt_host"],
            s["mqtt_port"],
            s["mqtt_client_id"],
            s["mqtt_username"] or None,
            s["mqtt_password"],
            keepalive_s=s["mqtt_keepalive_s"],
            tls_context=tls_context,
            timeout_ms=int(timeout_s * 1000),
            # No resend on the same connection (MQTT 3.1.1 section 4.4): a slow PUBACK must not
            # make a broker forward two copies. A timeout closes the link; the reading stays
            # queued and goes again on the next connection.
            resend_ms=0,
            clean_session=s["mqtt_clean_session"],
            on_message=self._on_message,
            connect=connect,
        )
        if self.downlink_topic:
            self.client.subscribe(self.downlink_topic, 1)  # made at every (re)connect

    def __repr__(self):
        return "<MQTTTransport %r topic %s>" % (self.client, self.topic)

    def _on_message(self, topic, payload):
        if len(self._inbox) >= self.max_downlinks:
            self._inbox.pop(0)
            self.dropped_downlinks += 1
        self._inbox.append(payload)

    def _take_downlinks(self):
        """(records, error text or None) of every pack received so far; empties the inbox."""
        if not self._inbox:
            return [], None
        from kpnthings import senml_decode, unload

        packs = self._inbox
        self._inbox = []
        records = []
        errors = []
        for data in packs:
            if not data.strip():
                continue
            try:
                records.extend(senml_decode.decode(data))
            except Exception as e:  # hostile input never escapes as an exception
                errors.append("downlink refused: %s" % ((str(e) or type(e).__name__)[:120]))
        unload("senml_decode", "senml_check")  # loaded for these packs only
        error = "; ".join(errors) if errors else None
        if error:
            self.downlink_error = error
        return records, error

    def _payload(self, body):
        if self._token_in is None:
            return self.topic, body
        token = auth.message_token(body, self._secret)
        if self._token_in == "wrapper":  # noqa: S105 - a mode name, not a password
            return self.topic, b"".join(
                (b'{"token":"', token.encode(), b'","body":', bytes(body), b"}")
            )
        if "{token}" in self.topic:
            return self.topic.replace("{token}", token), body
        return self.topic + "/" + token, body

    def _connected(self):
        c = self.client
        c.ensure_connected()
        try:
            c.poll(0)  # downlinks waiting since the last cycle; a keepalive ping if due
        except mqtt.MQTTConnectionError:
            c.ensure_connected()  # the link had died quietly: one fresh connection

    def send(self, pack_or_bytes):
        """Publish one body (bytes, str, or an object with .encode() such as senml.Pack)."""
        body = body_bytes(pack_or_bytes)
        topic, payload = self._payload(body)
        try:
            self._connected()
            self.client.publish(topic, payload, self.qos)
        except mqtt.MQTTAuthError as e:
            return Result(None, UNAUTHORIZED, None, str(e))
        except mqtt.MQTTError as e:
            return Result(None, RETRY, None, str(e) or type(e).__name__)
        except OSError as e:  # anything the socket layer let through
            return Result(None, RETRY, None, (str(e) or type(e).__name__)[:120])
        records, error = self._take_downlinks()
        return Result(None, ACCEPTED, records, error or self.client.subscribe_error)

    def poll(self, timeout_ms=0):
        """Between uplinks: read what the broker sent for up to `timeout_ms`, keep the link alive.

        Returns the downlink records received so far (and forgets them); a refused pack leaves
        its reason in `downlink_error`. Never raises for network trouble: a broken link is
        closed and the next `send` reconnects.
        """
        if self.client.connected:
            try:
                self.client.poll(timeout_ms)
            except mqtt.MQTTError:
                pass
        return self._take_downlinks()[0]

    def close(self):
        """Disconnect politely; the next send connects again."""
        self.client.disconnect()
