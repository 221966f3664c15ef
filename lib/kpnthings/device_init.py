"""A new Device's fields, set from its config and its parts: kpnthings.device loads this for
Device() only, at boot, and drops it after, so the loop never holds the code that ran once.
"""

from kpnthings.compat import const

# The README's response table (Reliability): transient failures back off exponentially (with
# jitter, up to a cap); 401/403/404 keep the data and wait long, since only a Portal fix helps.
_RETRY_BASE_S = const(10)
_RETRY_CAP_S = const(600)
_AUTH_RETRY_S = const(900)
# Largest body one request carries; KPN has no documented limit, boards have little RAM.
_DEFAULT_MAX_BODY = const(1024)
# Before an idle wait at least this long the device rests (see Device.rest): servers drop idle
# kept-alive connections after 5 to 75 s, so one kept through a longer sleep is mostly dead by
# the next cycle, and meanwhile holds heap (a Pico W's TLS session: about 25 KB).
_IDLE_CLOSE_S = const(30)
_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


def configure(
    dev,
    config,
    board,
    transport,
    actuators,
    outbox,
    now,
    log,
    clock_trusted,
    sleep_ms,
    feed,
    link_ready,
    signal,
    link_drop,
    reset,
):
    """Device.__init__'s work (its docstring says what each argument is)."""
    from kpnthings import auth
    from kpnthings.backoff import Backoff, FixedBackoff

    dev.config = config
    dev.board = board
    dev.transport = transport
    dev.actuators = actuators
    dev.outbox = outbox
    dev.now = now
    dev.log = log
    dev.base_name = auth.base_name(config["dvnuuid"])
    if clock_trusted is None:
        clock_trusted = getattr(board, "CLOCK_TRUSTED", False)
    dev.clock_trusted = clock_trusted
    if sleep_ms is None:
        from kpnthings.compat import sleep_ms
    dev._sleep_ms = sleep_ms
    dev.feed = feed
    dev.link_ready = link_ready
    dev.link_drop = link_drop
    dev.reset = reset
    dev._silent = 0  # uplinks in a row that got no answer at all (kpnthings.flush_failed)
    from kpnthings.compat import ticks_ms

    dev._accepted_at = ticks_ms()  # or boot: the clock of reset_after_h
    dev.max_body = config.get("max_body") or _DEFAULT_MAX_BODY
    dev._write_pack = None  # see prepare()
    dev._body = None
    dev._level = _LEVELS.get(config.get("log_level", "info"), 1)
    idle = config.get("idle_close_s")
    dev.idle_close_ms = (_IDLE_CLOSE_S if idle is None else idle) * 1000
    dev.cycles_done = 0
    import os

    # This boot's identity: a reading taken before the clock was set keeps it with its
    # ticks_ms, and is dated only in the boot that took it (kpnthings.outbox_read).
    dev._boot = int.from_bytes(os.urandom(4), "little")
    dev.refused = 0  # readings refused since boot: a value or a name SenML cannot carry
    # signal(outcome): a board's way to show a refused device (an LED pattern), if it has one.
    dev.signal = signal if signal is not None else getattr(board, "signal", None)
    dev._retry = Backoff(
        int(config.get("retry_base_s") or _RETRY_BASE_S) * 1000,
        int(config.get("retry_cap_s") or _RETRY_CAP_S) * 1000,
    )
    dev._auth_wait = FixedBackoff(int(config.get("auth_retry_s") or _AUTH_RETRY_S) * 1000)
    dev._hold_until = None  # ticks_ms before which nothing is sent (backing off)
    dev._held_by = None
    # Readings taken before the clock is set wait, stored but not sent, for
    # undated_wait_s (120) from the first cycle that finds the network up, so that an NTP
    # answer a little late still dates them (kpnthings.outbox_read); then they go without
    # a time, counted (undatedReadings). 0 sends them at once. Without an outbox to wait
    # in they go at once too.
    # _held_by says "no clock yet" then (a literal, not a constant: each module-level
    # name would be interned on the board for good).
    if config.get("undated_wait_s") != 0 and outbox is not None and not dev._trusted():
        dev._held_by = "no clock yet"
    # The answer to the last downlink ("led=applied"), until a pack carrying it is
    # answered (kpnthings.flush_answer); in RAM only, so a reset loses one not yet sent.
    dev._answer = None
