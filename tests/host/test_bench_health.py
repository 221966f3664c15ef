"""The bench's health figure (kpnthings_tools.bench.health): bytes per hour of health records at
the default setting, worked out from the packs the library builds on the MicroPython unix port,
not written down. The 32-bit ESP32 model runs when MICROPYTHON32_STOCK is set."""

import pytest

from kpnthings.config import DEFAULTS
from kpnthings_tools.bench import health, report, runtimes, trees


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """The bench's trees in a folder of this test's own (a `make bench` may rewrite build/bench)."""
    where = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trees, "OUT", where)
        trees.build_trees("xtensawin")
        yield health.measure_all()


@pytest.mark.parametrize("name", ["micropython64", "micropython32-stock"])
def test_health_bytes_per_hour_come_from_real_packs(out, name):
    if name not in out:
        pytest.skip("%s is not set: %s" % (name, runtimes.BUILD_HINT))
    m = out[name]
    assert "error" not in m, m
    assert (m["health_every"], m["interval_s"]) == (DEFAULTS["health_every"], 60)
    # one set an hour at the default (every 60 cycles of 60 s), after the boot's whole set
    assert len(m["sets_after"]) == m["hours"] == 4
    assert m["health_bytes_per_hour"] == sum(m["sets_after"]) // 4
    # the sets after a boot leave out what changes only with one (boot count, firmware...)
    assert 100 < max(m["sets_after"]) < m["first_set_bytes"] < 400
    assert m["bytes_on"] == m["bytes_off"] + m["first_set_bytes"] + sum(m["sets_after"])
    assert m["packs"] == 4 * 60 + 1


def test_health_rows_go_in_the_bench_table(out):
    rows = health.rows(out)
    text = report.markdown([report.HEADER] + rows)
    m = out["micropython64"]
    assert (
        "| health: bytes per hour, every 60 cycles of 60 s, micropython64 (B) | %d |"
        % (m["health_bytes_per_hour"])
        in text
    )
    assert all(len(row) == len(report.HEADER) for row in rows)
    failed = health.rows({"micropython64": {"error": "bench script failed"}})
    assert failed[0][1] == "bench script failed"
