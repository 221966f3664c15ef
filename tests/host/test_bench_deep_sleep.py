"""The bench's deep-sleep figures (kpnthings_tools.bench.deep_sleep): the wakes it measures are
real firmware runs that lose no reading and start no Wi-Fi when they only store, its relay counts
the bytes both ways, and its battery model moves the way the physics says (a figure is not a
test: no battery life is asserted, only that the model responds to each input as it must).
"""

import socket
import threading

import pytest

from kpnthings_tools.bench import deep_sleep, pki, table_format, trees

ARCH = "xtensawin"


@pytest.fixture(scope="module")
def bench_env(tmp_path_factory):
    """The bench's trees and chains in a folder of this test's own (not build/bench)."""
    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trees, "OUT", out)
        trees.build_trees(ARCH)
        yield {"chains": pki.make_chains(out / "pki")}


def test_the_wakes_measured_store_without_wifi_send_when_due_and_lose_nothing(bench_env):
    r = deep_sleep.measure(ARCH, bench_env["chains"]["rsa"])
    assert "error" not in r, r.get("error")
    every, batched = r["every_wake"], r["every_12th"]
    assert every["wakes"] == 4 and batched["wakes"] == 13
    # The unix board takes 3 readings a wake: every one of them reached the emulator.
    assert r["readings_stored"] == {"every_wake": 12, "every_12th": 39}
    assert batched["wifi_on_store_wakes"] == 0
    assert 0 < batched["store_awake_ms"] < batched["send_awake_ms"]
    # A send of 12 cycles carries more bytes up than a send of one, in fewer handshakes.
    assert every["send_up_bytes"] < batched["send_up_bytes"]
    assert batched["send_body_bytes"] > 3 * every["send_body_bytes"]
    # TLS: the server's certificate chain comes down with every send.
    assert every["send_down_bytes"] > 1000
    days = {(e["interval_s"], e["every"], e["board"]): e["days"] for e in r["estimates"]}
    assert days[(300, 12, "chip")] > days[(300, 1, "chip")] > days[(60, 1, "chip")]
    assert all(d > r["light_days"] for d in days.values())
    rows = deep_sleep.table_rows({"deep_sleep": r})
    assert rows[0][-1] == "met" and len(rows) == 4 + len(r["estimates"])
    assert "| deep sleep: awake per wake that stores" in table_format.markdown(
        [table_format.HEADER] + rows
    )


def test_the_model_responds_to_each_input():
    def days(**kw):
        args = dict(
            store_ms=20,
            send_ms=200,
            up_bytes=700,
            down_bytes=2500,
            interval_s=300,
            every=1,
            deep_ma=0.01,
        )
        args.update(kw)
        return deep_sleep.estimate(**args)["days"]

    base = days()
    assert days(every=12) > base  # fewer joins and handshakes
    assert days(interval_s=600) > base
    assert days(deep_ma=5.0) < base  # a development board's regulator
    assert days(send_ms=2000) < base
    assert days(join="static") > base  # 0.7 s instead of 1.6 s of listening radio
    # A development board's sleep current dominates: batching barely helps it.
    assert days(every=12, deep_ma=5.0) / days(deep_ma=5.0) < 1.5 < days(every=12) / base
    text = deep_sleep.assumptions()
    for key, (_, source) in deep_sleep.ASSUMED.items():
        assert key in text and source in text


def test_the_relay_counts_bytes_each_way():
    server = socket.create_server(("127.0.0.1", 0))

    def echo_twice():
        conn, _ = server.accept()
        data = conn.recv(100)
        conn.sendall(data * 2)
        conn.close()

    threading.Thread(target=echo_twice, daemon=True).start()
    relay = deep_sleep.Relay(server.getsockname()[1])
    try:
        with socket.create_connection(("127.0.0.1", relay.url_port)) as c:
            c.sendall(b"x" * 10)
            got = b""
            while len(got) < 20:
                more = c.recv(100)
                if not more:
                    break
                got += more
        assert got == b"x" * 20
        assert relay.take() == (10, 20)
        assert relay.take() == (0, 0)
    finally:
        relay.close()
        server.close()
