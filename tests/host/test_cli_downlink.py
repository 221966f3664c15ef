"""`kpnthings downlink` and `kpnthings messages` against an emulator (issue 19): a command queued
by device name, the answers listed, --wait, and the emulator's API token passed on."""

import json
import os

import pytest
from _cli_support import OTHER_UUID, SECRET, UUID, post_uplink, run_cli, write_config

from kpnthings_tools import cli
from kpnthings_tools.emulator import Emulator


@pytest.fixture
def bench(tmp_path):
    """An emulator with a named device, and what a device would send it."""
    emu = Emulator(tmp_path / "emu.sqlite3", [(UUID, SECRET, "kitchen")], log=lambda line: None)
    server = emu.serve()

    def uplink(answer=None):
        records = [("temperature", 20)]
        if answer is not None:
            records.append(("downlink", answer))
        assert post_uplink(server.url, cli.build_pack(UUID, records)) == 200

    server.uplink = uplink
    yield server
    server.shutdown()


def test_downlink_queues_a_command_by_device_name_and_lists_the_answers(capsys, bench):
    code, out, err = run_cli(
        capsys, "downlink", "kitchen", "led=true", "relay=true", 'msg="42"', "--url", bench.url
    )
    assert code == 0, err
    assert out == "queued downlink #1 for kitchen (%s)\n" % UUID
    body = json.loads(bench.emulator.downlinks(UUID)[0]["body"])
    assert [{k: v for k, v in r.items() if k != "bn"} for r in body] == [
        {"n": "led", "vb": True},
        {"n": "relay", "vb": True},
        {"n": "msg", "vs": "42"},
    ]
    bench.uplink()  # fetches it
    code, out, _ = run_cli(capsys, "downlink", UUID, "--url", bench.url)
    assert code == 0 and out.splitlines()[0] == (
        "downlink #1: waiting (delivered with message #1; 0 uplinks since)"
    )
    bench.uplink("led=applied; relay=refused: unknown actuator; msg=refused: unknown actuator")
    code, out, _ = run_cli(capsys, "downlink", "kitchen", "--url", bench.url)
    assert out.splitlines() == [
        "downlink #1: partly refused (answered in message #2)",
        "  led = true: applied",
        "  relay = true: refused: unknown actuator",
        "  msg = 42: refused: unknown actuator",
    ]


def test_downlink_wait_exits_by_what_the_device_answered(capsys, bench):
    import threading

    def device(answer):
        # Polls like a board: the uplink after the one that fetched the downlink answers it.
        for _ in range(100):
            if bench.emulator.device_info(UUID)["queued_downlinks"]:
                bench.uplink()
                bench.uplink(answer)
                return
            threading.Event().wait(0.05)

    for answer, status, first in (
        ("led=applied", 0, "downlink #1: applied (answered in message #2)"),
        ("led=refused: pin error: EIO", 1, "downlink #2: refused (answered in message #4)"),
    ):
        board = threading.Thread(target=device, args=(answer,))
        board.start()
        code, out, _ = run_cli(
            capsys, "downlink", "kitchen", "led=true", "--wait", "20", "--url", bench.url
        )
        board.join()
        assert code == status, out
        assert out.splitlines()[1] == first
    # Nobody answers: the wait ends, and says so.
    code, out, _ = run_cli(
        capsys, "downlink", "kitchen", "led=false", "--wait", "0.2", "--url", bench.url
    )
    assert code == 1 and out.splitlines()[1] == ("downlink #3: queued; no answer within 0.2 s")


def test_messages_lists_what_the_emulator_received(capsys, tmp_path, bench):
    bench.emulator.queue_downlink(UUID, b'[{"n":"led","vb":true}]')
    bench.uplink()
    bench.uplink("led=applied")
    assert post_uplink(bench.url, cli.build_pack(UUID, [("x", 1)]), secret="W" * 40) == 401
    config = write_config(tmp_path / "c.json", bench.url)
    code, out, err = run_cli(capsys, "messages", config, "--url", bench.url)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("#1 ") and lines[0].endswith(
        " 200 accepted: temperature=20  <- delivered downlink #1"
    )
    assert lines[1].endswith(' 200 accepted: temperature=20, downlink="led=applied"')
    assert lines[2].endswith(
        " 401 unauthorized: Things-Message-Token does not match body and secret"
    )
    code, out, _ = run_cli(
        capsys, "messages", "kitchen", "--since", "2", "--json", "--url", bench.url
    )
    assert [m["id"] for m in json.loads(out)] == [3]


def test_downlink_and_messages_name_what_went_wrong(capsys, bench):
    code, _, err = run_cli(capsys, "downlink", "cellar", "led=true", "--url", bench.url)
    assert code == 2 and "no device named 'cellar'" in err and "named: kitchen" in err
    code, _, err = run_cli(capsys, "downlink", OTHER_UUID, "led=true", "--url", bench.url)
    assert code == 2 and "not registered" in err
    code, _, err = run_cli(capsys, "downlink", "kitchen", "led", "--url", bench.url)
    assert code == 2 and "name=value" in err
    code, _, err = run_cli(capsys, "downlink", "kitchen", "--wait", "1", "--url", bench.url)
    assert code == 2 and "--wait needs a downlink" in err
    code, _, err = run_cli(capsys, "messages", "kitchen", "--url", "http://127.0.0.1:9")
    assert code == 2 and "no emulator at http://127.0.0.1:9" in err and "mock-server" in err
    assert bench.emulator.downlinks(UUID) == []


def test_downlink_and_messages_pass_the_emulators_api_token(capsys, tmp_path):
    # An emulator open to the LAN guards its API with a token (mock-server --host 0.0.0.0):
    # the bench verbs take it from --api-token or $KPNTHINGS_API_TOKEN.
    emu = Emulator(tmp_path / "emu.sqlite3", [(UUID, SECRET, "kitchen")], log=lambda line: None)
    server = emu.serve(api_token="bench-token-7")
    try:
        code, _, err = run_cli(capsys, "messages", UUID, "--url", server.url)
        assert code != 0 and "401" in err, err
        code, out, err = run_cli(
            capsys,
            "downlink",
            "kitchen",
            "led=true",
            "--url",
            server.url,
            "--api-token",
            "bench-token-7",
        )
        assert code == 0 and "queued downlink #1 for kitchen" in out, err
        os.environ["KPNTHINGS_API_TOKEN"] = "bench-token-7"
        try:
            code, out, err = run_cli(capsys, "messages", "kitchen", "--url", server.url)
        finally:
            del os.environ["KPNTHINGS_API_TOKEN"]
        assert code == 0, err
    finally:
        server.shutdown()
