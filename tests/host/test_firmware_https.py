"""The real firmware over verified HTTPS against the local emulator in its HTTPS mode (issue 15).

firmware/main.py runs on a MicroPython unix port with "board": "unix", its config.json naming
the test root CA as DER (ca_file, relative to config.json, as on a board). The emulator serves
a certificate for 127.0.0.1 issued by an intermediate, for both chains a board meets: EC P-256
and RSA-2048. Every cycle must reach the emulator and be stored as accepted, the queued downlink
must reach the simulated LED, and a device given another CA must send nothing at all (and keep
looping). Runs on the 64-bit port, and on the 32-bit ESP32 and Pico W models when
MICROPYTHON32_STOCK / MICROPYTHON32 name them.
"""

import json
import os
import shutil
import subprocess

import pytest

from kpnthings import auth
from kpnthings_tools import demo, emulator, provision
from kpnthings_tools.bench import pki

TIMEOUT_S = 60
CYCLES = 3
RUNTIMES = ("micropython64", "micropython32-stock", "micropython32")
_VARS = {"micropython32-stock": "MICROPYTHON32_STOCK", "micropython32": "MICROPYTHON32"}


def binary(runtime):
    if runtime == "micropython64":
        return demo.micropython_binary()
    path = os.environ.get(_VARS[runtime], "")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("%s is not set (a 32-bit MicroPython 1.28 unix port)" % _VARS[runtime])
    return path


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    return pki.make_chains(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def https_device(chains, request):
    """An emulator serving HTTPS with the chain named by the test's `chain` parameter."""
    chain = chains[request.param]
    dvnuuid, secret = provision.new_dvnuuid(), provision.new_secret()
    emu = emulator.Emulator(":memory:", [(dvnuuid, secret)], log=lambda line: None)
    server = emu.serve(tls_cert=str(chain.cert), tls_key=str(chain.key))
    try:
        yield {"dvnuuid": dvnuuid, "secret": secret, "emu": emu, "url": server.url, "chain": chain}
    finally:
        server.shutdown()


def run_firmware(runtime, dev, tmp_path, ca_der, cycles=CYCLES, **extra):
    shutil.copy(ca_der, tmp_path / "ca.der")
    cfg = {
        "dvnuuid": dev["dvnuuid"],
        "secret": dev["secret"],
        "url": dev["url"],
        "board": "unix",
        "ca_file": "ca.der",
        "interval_s": 1,
        "cycles": cycles,
        "timeout_s": 5,
    }
    cfg.update(extra)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return subprocess.run(
        [binary(runtime), str(demo.FIRMWARE)],
        cwd=str(tmp_path),
        env=demo.firmware_env(path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


@pytest.mark.parametrize("https_device", pki.KEY_TYPES, indirect=True)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cycles_over_verified_https_are_stored(runtime, https_device, tmp_path):
    dev = https_device
    assert dev["url"].startswith("https://127.0.0.1:")
    dev["emu"].queue_downlink(dev["dvnuuid"], b'[{"n":"led","vb":true}]')
    proc = run_firmware(runtime, dev, tmp_path, dev["chain"].ca_der)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out and "WARNING" not in out, out[-3000:]
    stored = dev["emu"].messages(dev["dvnuuid"])
    assert [m["outcome"] for m in stored] == ["accepted"] * CYCLES, out[-3000:]
    assert all(m["token_check"] == "ok" for m in stored)
    bn = auth.base_name(dev["dvnuuid"])
    names = {rec["n"][len(bn) :] for rec in stored[0]["records"]}
    assert {"temperature", "humidity", "batteryVoltage"} <= names
    assert "[pin] LED -> 1" in proc.stdout  # the downlink came back over the same TLS link
    assert any(rec["n"] == bn + "led" and rec.get("vb") is True for rec in stored[1]["records"]), (
        "the LED's new state is echoed in the next uplink"
    )


@pytest.mark.parametrize("https_device", pki.KEY_TYPES, indirect=True)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_wrong_ca_is_refused(runtime, https_device, tmp_path):
    dev = https_device
    proc = run_firmware(runtime, dev, tmp_path, dev["chain"].other_ca_der)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]  # the loop goes on; readings wait in the outbox
    assert dev["emu"].messages() == []  # not one request reached the server's handler
    uplinks = [x for x in proc.stdout.splitlines() if x.startswith("[kpn] uplink 1:")]
    assert uplinks and "retry" in uplinks[0] and "TLS" in uplinks[0], out[-3000:]


@pytest.mark.parametrize(
    ("cas", "accepted"),
    [
        ({"ca_file": None, "ca_files": ["root-a.der", "root-b.der"]}, True),
        ({"ca_file": "root-a.der", "ca_files": ["root-b.der"]}, True),
        ({"ca_file": None, "ca_files": ["root-a.der"]}, False),
    ],
    ids=["ca_files=[A,B]", "ca_file=A,ca_files=[B]", "ca_files=[A]"],
)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_next_root_in_ca_files_verifies_the_switched_server(
    runtime, chains, cas, accepted, tmp_path
):
    """Issue 19: root A (RSA) is the one the server used, root B (EC) the one it has switched
    to. A device that carries both verifies it; a device with A only sends nothing."""
    shutil.copy(chains["rsa"].ca_der, tmp_path / "root-a.der")
    shutil.copy(chains["ec"].ca_der, tmp_path / "root-b.der")
    dvnuuid, secret = provision.new_dvnuuid(), provision.new_secret()
    emu = emulator.Emulator(":memory:", [(dvnuuid, secret)], log=lambda line: None)
    server = emu.serve(tls_cert=str(chains["ec"].cert), tls_key=str(chains["ec"].key))
    try:
        dev = {"dvnuuid": dvnuuid, "secret": secret, "url": server.url}
        proc = run_firmware(runtime, dev, tmp_path, chains["rsa"].ca_der, cycles=1, **cas)
        stored = emu.messages(dvnuuid)
    finally:
        server.shutdown()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    if accepted:
        assert [m["outcome"] for m in stored] == ["accepted"], out[-3000:]
    else:
        assert stored == [], out[-3000:]
        assert "retry" in out and "TLS" in out, out[-3000:]
