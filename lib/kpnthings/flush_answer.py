"""The answer to a downlink: its commands applied through the allow-list, and what became of
them written as the text the next pack carries (`{"n":"downlink","vs":"led=applied"}`,
docs/downlinks.md). kpnthings.flush loads this only when a response carries a downlink, and
drops it after.
"""

from kpnthings.flush import build


def apply(dev, result):
    """Apply the downlink of an accepted `result` (or note the one the board could not read),
    and keep its answer in dev._answer for the next pack."""
    # "led=applied; fan=refused: <why>": whole answers only, the rest counted ("and 3 more"),
    # in at most a quarter of max_body (and 200 characters), so that no flood of commands can
    # crowd readings out of a pack or the answer out of the heap. 14: room for "and N more".
    room = min(200, dev.max_body // 4) - 14
    text = ""
    more = 0
    error = result.error
    if error and error.startswith("downlink refused: "):
        text = "refused: %s; " % error[18 : room + 7]  # the whole downlink, nothing named
    acts = dev.actuators
    if result.downlink and acts is not None:
        from kpnthings import unload

        try:
            outcomes = acts.apply(result.downlink, dev.base_name)
        finally:
            unload("downlink_apply")  # loaded for this downlink only
        for name, ok, reason in outcomes:
            if ok:
                dev._info("[kpn] downlink %s = %r applied" % (name, acts.state(name)))
                item = "%s=applied; " % name
            else:
                dev._warn("[kpn] downlink %s refused: %s" % (name, reason))
                item = "%s=refused: %s; " % (name, reason[:60])
            if more or len(text) + len(item) > room:
                more += 1
            else:
                text += item
    if more:
        text += "and %d more; " % more
    if not text:
        return
    try:
        # Written alone into the body buffer once (the pack just sent is done with): a
        # decoder's message may quote hostile text that no pack can hold (a lone surrogate),
        # and such an answer would stop every later uplink. The log has the whole message.
        build(dev, (), [{"n": "downlink", "vs": text}])
    except ValueError:
        text = "refused: unreadable (see the board's log); "
    dev._answer = text[:-2]
