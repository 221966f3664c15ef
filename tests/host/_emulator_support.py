"""What the emulator tests share: the test devices, a pack for them, and `Api`, a keep-alive client
of the emulator that remembers every response. The fixtures `logs`, `server` and `api` are in
conftest.py."""

import http.client
import json
from pathlib import Path

from kpnthings import auth

DATA = Path(__file__).resolve().parent.parent / "data"
INGEST = "/ingestion/ip/senml/v1"
# Vector 3 of tests/data/token.json: a KPN-shaped pack with a known token.
VECTOR = json.loads((DATA / "token.json").read_text())["vectors"][2]
UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = VECTOR["secret"]
OTHER_UUID = "0b7d4a6e-93f2-4c1a-8d5e-2f6a7b8c9d0e"
OTHER_SECRET = "Zq8XbT4mN2vR7cK1pL9sW3yH6jF0dG5aE8uI"
STRANGER = "11111111-2222-4333-8444-555555555555"


def pack(dvnuuid=UUID, records='{"n":"temperature","u":"Cel","v":21.5}'):
    return ('[{"bn":"urn:dev:DVNUUID:%s:","bt":1700000000},%s]' % (dvnuuid, records)).encode()


class Api:
    """A keep-alive HTTP client that remembers every response, to scan them for secrets."""

    def __init__(self, server):
        self.server = server
        self.seen = []
        self.conn = self._connect()

    def _connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)

    def request(self, method, path, body=None, headers=None, record=True):
        self.conn.request(method, path, body, headers or {})
        resp = self.conn.getresponse()
        data = resp.read()
        if record:
            self.seen.append(str(resp.headers).encode() + data)
        if resp.will_close:
            self.conn.close()
            self.conn = self._connect()
        return resp, data

    def uplink(self, body, token=None, secret=SECRET, content_type="application/json", record=True):
        headers = {"Content-Type": content_type}
        if token is None:
            token = auth.message_token(body, secret)
        if token is not False:
            headers["Things-Message-Token"] = token
        resp, data = self.request("POST", INGEST, body, headers, record)
        return resp.status, data

    def get(self, path):
        resp, data = self.request("GET", path)
        assert resp.status == 200, (path, resp.status, data)
        assert resp.getheader("Content-Type") == "application/json"
        return json.loads(data)

    def queue(self, dvnuuid, body):
        resp, data = self.request("POST", "/api/devices/%s/downlinks" % dvnuuid, body)
        return resp.status, data

    def close(self):
        self.conn.close()


def last_message(api, dvnuuid=None):
    path = "/api/messages" if dvnuuid is None else "/api/devices/%s/messages" % dvnuuid
    return api.get(path)[-1]
