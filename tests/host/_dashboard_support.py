"""What the dashboard tests share: Debian's chromium and how it is launched (through Playwright, its
own browsers never used), the page's elements read back, and plain HTTP to the emulator. The
`browser` fixture (built on _browser_missing and _launch) is in conftest.py."""

import os
import urllib.error
import urllib.request
from pathlib import Path

from kpnthings_tools import emulator

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30000


def _browser_missing():
    if not os.path.exists(CHROMIUM):
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (.venv/bin/pip install playwright)"
    return None


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, dict(resp.headers), resp.read()


def _uplink(url, body, token):
    req = urllib.request.Request(
        url + emulator.INGEST_PATH,
        data=body,
        headers={"Content-Type": "application/json", "Things-Message-Token": token},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def _launch(playwright, profile):
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )


def _shown(page, selector):
    """The element once the page shows it (30 s at most)."""
    handle = page.wait_for_selector(selector, timeout=WAIT_MS)
    assert handle is not None, selector
    return handle


def _count(page, name):
    value = page.get_attribute('.chart[data-name="%s"]' % name, "data-count")
    return int(value or 0)
