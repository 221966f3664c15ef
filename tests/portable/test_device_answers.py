"""The answer to a downlink (issue 19): applied or refused, in the next uplink, once."""

from _device_support import BN, CONFIG, MemOutbox, Result, make, values

# -- the answer to a downlink (issue 19): applied or refused, in the next uplink, once ----------


def answer(pack):
    """The vs of the pack's `downlink` record, or None when it has none."""
    said = [r["vs"] for r in pack if r.get("n") == "downlink"]
    assert len(said) <= 1, pack
    return said[0] if said else None


def test_the_next_uplink_answers_each_downlink_command_and_the_one_after_does_not():
    downlink = [
        {"n": BN + "led", "vb": True},
        {"n": BN + "relay", "vb": True},
        {"n": BN + "fan", "vs": "banana"},
    ]
    dev, tr, pins, _, _ = make(Result(200, "accepted", downlink))
    dev.cycle()
    assert answer(tr.pack(0)) is None  # the pack that fetched the downlink predates it
    dev.cycle()
    assert answer(tr.pack(1)) == (
        "led=applied; relay=refused: unknown actuator;"
        " fan=refused: wrong type: vs given, pwm wants v"
    )
    assert values(tr.pack(1))["led"] is True  # the state echo goes on beside it
    dev.cycle()
    assert answer(tr.pack(2)) is None  # accepted once: gone
    assert pins == [("LED", 1)]


def test_an_answer_waits_through_failed_uplinks_and_leaves_with_the_accepted_one():
    box = MemOutbox()
    fail = Result(None, "retry", None, "connection refused")
    dev, tr, _, _, _ = make(Result(200, "accepted", [{"n": BN + "led", "v": 2}]), fail, outbox=box)
    dev.cycle()
    dev.cycle()  # refused by the network: the answer stays
    assert answer(tr.pack(1)) == "led=refused: out of range: v must be 0 or 1, got 2"
    dev.retry_now()
    dev.cycle()
    assert answer(tr.pack(2)) == "led=refused: out of range: v must be 0 or 1, got 2"
    dev.cycle()
    assert answer(tr.pack(3)) is None


def test_the_answer_to_a_downlink_is_replaced_by_the_answer_to_the_next_one():
    # One downlink per accepted uplink: the uplink that carries one answer may fetch the next
    # downlink, whose answer then goes in the uplink after it.
    dev, tr, _, _, _ = make(
        Result(200, "accepted", [{"n": BN + "led", "vb": True}]),
        Result(200, "accepted", [{"n": BN + "door", "vb": True}]),
    )
    dev.cycle()
    dev.cycle()
    dev.cycle()
    dev.cycle()
    assert [answer(tr.pack(i)) for i in range(4)] == [
        None,
        "led=applied",
        "door=refused: unknown actuator",
        None,
    ]


def test_a_malformed_pack_takes_its_answer_with_it():
    # KPN refused the pack the answer was in (its readings go to the dead-letter store): the
    # answer is not sent again, so an answer can never keep a queue refusing.
    box = MemOutbox()
    dev, tr, _, _, _ = make(
        Result(200, "accepted", [{"n": BN + "led", "vb": True}]),
        Result(400, "malformed", None, "HTTP 400"),
        outbox=box,
    )
    dev.cycle()
    dev.cycle()
    assert answer(tr.pack(1)) == "led=applied"
    # The readings went again alone and were accepted (tests/portable/test_isolate.py); the
    # answer went with the refused pack.
    assert box.dead == [] and len(box) == 0 and answer(tr.pack(2)) is None
    dev.cycle()
    assert all(answer(tr.pack(i)) is None for i in range(2, len(tr.bodies)))


def test_a_downlink_the_board_cannot_read_is_answered_as_refused():
    dev, tr, _, _, _ = make(
        Result(200, "accepted", None, "downlink refused: not a SenML pack (JSON array)")
    )
    dev.cycle()
    dev.cycle()
    assert answer(tr.pack(1)) == "refused: not a SenML pack (JSON array)"


def test_a_flood_of_bad_commands_gets_a_bounded_answer():
    downlink = [{"n": BN + "x%d" % i, "vb": True} for i in range(200)]
    dev, tr, _, logs, _ = make(Result(200, "accepted", downlink))
    dev.cycle()
    assert len([x for x in logs if "refused: unknown actuator" in x]) == 200  # each logged
    dev.cycle()
    said = answer(tr.pack(1))
    # At most a quarter of max_body (1024 by default) and 200 characters; whole answers, the
    # rest counted.
    assert said == "; ".join(
        ["x%d=refused: unknown actuator" % i for i in range(6)] + ["and 194 more"]
    )
    assert len(said) <= 200 and len(tr.bodies[1]) <= dev.max_body
    # A command whose answer alone is too long is counted, not cut.
    dev, tr, _, _, _ = make(Result(200, "accepted", [{"n": BN + "n" * 200, "vb": True}]))
    dev.cycle()
    dev.cycle()
    assert answer(tr.pack(1)) == "and 1 more"
    # The smallest max_body (256) leaves 64 characters.
    dev, tr, _, _, _ = make(Result(200, "accepted", downlink), config=dict(CONFIG, max_body=256))
    dev.cycle()
    dev.cycle()
    said = answer(tr.pack(1))
    assert said == "x0=refused: unknown actuator; and 199 more", said


def test_an_answer_that_leaves_no_room_in_max_body_is_dropped_not_the_uplink():
    # At the smallest max_body, six actuator states, the droppedReadings count and the answer
    # do not fit beside the base fields: the answer goes (said in the log), the readings, the
    # states and the count still go up.
    spec = dict(("out%d" % i, {"type": "digital", "pin": i}) for i in range(6))
    downlink = [{"n": BN + name, "vb": True} for name in sorted(spec)]
    box = MemOutbox()
    dev, tr, _, logs, _ = make(
        Result(200, "accepted", downlink),
        outbox=box,
        config=dict(CONFIG, max_body=256),
        actuators=spec,
    )
    dev.cycle()
    assert dev._answer.startswith("out0=applied; out1=applied; ")
    box.dropped = 50000  # the outbox overflowed meanwhile
    dev.cycle()
    assert "[kpn] downlink answer dropped: no room in max_body" in logs
    assert len(tr.bodies) >= 2 and answer(tr.pack(1)) is None
    sent = values(tr.pack(1))
    assert sent["out5"] is True and sent["droppedReadings"] == 50000
    assert dev._answer is None
    dev.cycle()
    assert all(answer(tr.pack(i)) is None for i in range(len(tr.bodies)))
    assert "temperature" in values(tr.pack(2))  # and the readings go on


def test_an_answer_the_pack_writer_cannot_write_never_stops_the_uplinks():
    # The decoder's message quotes the hostile text, here a lone surrogate, which has no UTF-8
    # form: an answer holding it would make every later pack fail to build.
    error = "downlink refused: record 0: field 'n': name '\ud800' is not a valid SenML name"
    box = MemOutbox()
    dev, tr, _, logs, _ = make(Result(200, "accepted", None, error), outbox=box)
    dev.cycle()
    dev.cycle()
    assert answer(tr.pack(1)) == "refused: unreadable (see the board's log)"
    assert len(box) == 0 and len(tr.bodies) == 2
    assert not any("failed" in line for line in logs), logs
