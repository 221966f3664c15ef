"""The HTTPS uplink the loop keeps between cycles (kpnthings.wiring makes it at boot).

Resident, while the code it uses (kpnthings.client, auth and the HTTP client) is dropped
whenever the device rests before a long wait, and loaded again by the next send.
"""


class Uplink:
    """The HTTPS uplink as the loop keeps it between cycles: what it takes to make a
    kpnthings.client.Client. The client is made at boot, dropped with its code (client, auth,
    the HTTP client) when the device rests before a long wait (Device.rest), and made again
    by the next send. `cadata` is what kpnthings.wiring makes of ca_file and ca_files: the list
    of their paths, read at each client's TLS set-up, so no CA waits in the heap between."""

    def __init__(self, cfg, cadata):
        self._cfg = cfg
        self._cadata = cadata
        self.addresses = []  # the server's address, looked up once: it outlives the client
        self._client = self._make()  # at boot, so a bad URL or CA stops the boot

    def _make(self):
        from kpnthings.client import Client

        cfg = self._cfg
        return Client(
            cfg["dvnuuid"],
            cfg["secret"],
            cfg["url"],
            timeout=cfg["timeout_s"],
            cadata=self._cadata,
            insecure=cfg["tls_insecure"],
            addresses=self.addresses,
        )

    def __repr__(self):
        return repr(self._client) if self._client is not None else "<Uplink %s>" % self._cfg["url"]

    def send(self, body):
        client = self._client
        if client is None:
            client = self._client = self._make()
        return client.send(body)

    def rest(self):
        client = self._client
        if client is None:
            return
        self._client = None
        client.close()
        client = None
        from kpnthings import unload

        unload("client", "auth", "http_client", "http_response", "socket_io", "http_chunked")

    def close(self):
        if self._client is not None:
            self._client.close()
