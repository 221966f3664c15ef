"""Fixtures of the host tests.

`logs`, `server` and `api` are the emulator tests' (test_emulator*.py): an emulator on 127.0.0.1
with the two devices of _emulator_support, its log lines, and an `Api` client of it. A test
module's own fixture of the same name wins (test_dashboard's `server`)."""

import pytest
from _dashboard_support import _browser_missing, _launch
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
