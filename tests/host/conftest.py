"""Fixtures of the host tests, for the test files split by subject (issue 16).

- `logs`, `server` and `api` (test_emulator*.py, test_dashboard*.py): an emulator on 127.0.0.1
  with the two devices of _emulator_support (`server.devices`), its log lines, and an `Api`
  client of it. A test module's own fixture of the same name wins.
- `browser` (test_dashboard*.py): Debian's chromium driven by Playwright.
- `ca_der` (a DER root, one per module) and `board_standin` (a folder that plays a board's
  filesystem behind socat and the unix port's raw REPL) (test_deploy*.py).
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
from _dashboard_support import _browser_missing, _launch
from _deploy_support import MICROPYTHON, _free_port
from _emulator_support import OTHER_SECRET, OTHER_UUID, SECRET, UUID, Api

from kpnthings_tools.emulator import Emulator


@pytest.fixture
def logs():
    return []


@pytest.fixture
def server(tmp_path, logs):
    emu = Emulator(
        tmp_path / "emu.sqlite3", {UUID: SECRET, OTHER_UUID: OTHER_SECRET}, log=logs.append
    )
    srv = emu.serve("127.0.0.1", 0)
    srv.devices = [(UUID, SECRET), (OTHER_UUID, OTHER_SECRET)]
    yield srv
    srv.shutdown()


@pytest.fixture
def api(server):
    client = Api(server)
    yield client
    client.close()


@pytest.fixture
def browser(tmp_path):
    """Debian's chromium driven by Playwright: a persistent context (its profile in tmp_path),
    closed after the test. The test is skipped, saying why, when either is missing."""
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = _launch(pw, tmp_path / "chromium-profile")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def ca_der(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    pem = trustme.CA().cert_pem.bytes().decode()
    path = tmp_path_factory.mktemp("ca") / "kpn-ca.der"
    path.write_bytes(ssl.PEM_cert_to_DER_cert(pem))
    return path


@pytest.fixture
def board_standin(tmp_path):
    """A folder that plays the board's filesystem, behind socat + the unix port's raw REPL."""
    socat = shutil.which("socat")
    if not socat:
        pytest.skip(
            "socat is not installed (apt-get install socat): without it there is no "
            "board stand-in for mpremote; the plan and command tests above still ran"
        )
    if not MICROPYTHON:
        pytest.skip("micropython (unix port) not found in the venv")
    folder = tmp_path / "board"
    folder.mkdir()
    for _attempt in range(5):
        port = _free_port()
        # nodelay: without it Nagle's algorithm delays each raw-REPL round trip by ~40 ms and a
        # deploy takes several times longer.
        proc = subprocess.Popen(
            [
                socat,
                "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,nodelay" % port,
                "EXEC:%s,pty,raw,echo=0" % MICROPYTHON,
            ],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # socat forks one child per connection: stop them together
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("socat could not listen on a free port")
    try:
        yield folder, "socket://127.0.0.1:%d" % port
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
