"""End to end (issue 18, item 2): the emulator refuses one record in a batch of 30 with a 400,
as KPN does; the device's real Outbox, flush and HTTP Client find it by halves: 29 readings are
stored by the emulator, 1 is dead-lettered, and the requests stay within 1 + 2 log2(30)."""

import math

from kpnthings.client import Client
from kpnthings.device import Device
from kpnthings.outbox import Outbox
from kpnthings_tools import emulator, provision


class Board:
    CLOCK_TRUSTED = True

    def read_sensors(self):
        return []


def test_one_refused_record_in_thirty(tmp_path):
    ident = provision.new_identity()
    emu = emulator.Emulator(
        ":memory:", devices=[(ident.dvnuuid, ident.secret)], log=lambda line: None, refuse={"bad"}
    )
    server = emu.serve()
    try:
        box = Outbox(str(tmp_path / "outbox"))
        names = ["r%d" % i for i in range(30)]
        names[11] = "bad"
        box.extend([{"n": name, "v": i, "t": 1760000000 + i} for i, name in enumerate(names)])
        client = Client(ident.dvnuuid, ident.secret, server.url, timeout=5)
        cfg = {"dvnuuid": ident.dvnuuid, "interval_s": 60, "max_body": 4096}
        logs = []
        dev = Device(cfg, Board(), client, None, outbox=box, log=logs.append)
        dev.cycle()
        client.close()
        messages = emu.messages(ident.dvnuuid, limit=1000)
        stored = [
            r["n"].rsplit(":", 1)[1]
            for m in messages
            if m["outcome"] == "accepted"
            for r in m["records"]
        ]
        assert sorted(stored) == sorted(n for n in names if n != "bad"), stored
        assert [r["n"] for r in box.dead_letters()] == ["bad"]
        assert len(box) == 0
        bound = 1 + 2 * math.ceil(math.log2(30))
        assert len(messages) <= bound, (len(messages), logs)
        print("1 refused record in 30: %d requests (bound %d)" % (len(messages), bound))
    finally:
        server.shutdown()
