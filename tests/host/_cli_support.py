"""What the CLI tests share: the CLI run in-process, its 'key: value' output read back, the test
device and a config for it, and an uplink or an API read against an emulator."""

import json
import urllib.error
import urllib.request

from kpnthings import auth
from kpnthings_tools import cli, provision

UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
OTHER_UUID = "0b7d4a6e-93f2-4c1a-8d5e-2f6a7b8c9d0e"
OTHER_SECRET = "Zq8XbT4mN2vR7cK1pL9sW3yH6jF0dG5aE8uI"


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fields(out):
    """'key: value' lines -> dict."""
    result = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        result[key.strip()] = value.strip()
    return result


def write_config(path, url, secret=SECRET):
    provision.write_config(
        path, {"dvnuuid": UUID, "secret": secret, "url": url, "board": "unix"}, force=True
    )
    return str(path)


def post_uplink(url, body, secret=SECRET):
    req = urllib.request.Request(url + "/ingestion/ip/senml/v1", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Things-Message-Token", auth.message_token(body, secret))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def get_json(url, path):
    with urllib.request.urlopen(url + path, timeout=10) as resp:
        return json.loads(resp.read())
