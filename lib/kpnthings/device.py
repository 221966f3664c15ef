"""The device loop: read sensors, send one signed pack, apply the downlink, sleep, repeat.

Kept free of hardware and network details so that it runs and is tested on the host: the board,
the transport (anything with send(body) -> Result, such as client.Client), the actuators and the
clock are passed in. firmware/main.py wires up the real ones.

Each uplink carries the readings and the state of every actuator a downlink has driven, so the
next uplink after a command shows the Portal that it took effect. With an outbox, readings are
stored before any send is tried and leave it only when KPN accepts them (ack) or rejects them as
malformed (dead letter); 401/404/transient failures keep them for a later cycle.
"""

import time

from kpnthings.compat import const

ACCEPTED = "accepted"
MALFORMED = "malformed"
RETRY = "retry"
# Idle sleeps are cut into slices so a watchdog can be fed between them.
_SLEEP_SLICE_MS = const(1000)
# For the type checker only: mpy-cross folds _TYPING to 0 and drops this import, and the
# annotations in Device (fields kpnthings.device_init sets) compile to nothing.
_TYPING = const(0)
if _TYPING:
    from typing import Any


def _value_field(value):
    if isinstance(value, bool):
        return "vb"
    if isinstance(value, (int, float)):
        return "v"
    if isinstance(value, str):
        return "vs"
    return None


# SenML's name rule (RFC 8428 4.5.1) for the part after the base name, which starts with a
# letter already: checked when a reading is taken, so a bad name never reaches the outbox.
# The same set as senml_text._NAMECH, kept here so that taking a reading loads no encoder.
_NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-:./_"


def reading_record(name, value, unit=None, t=None):
    """A reading as the outbox and the pack builder take it: {"n", "u"?, v|vb|vs, "t"?}."""
    field = _value_field(value)
    if field is None:
        raise ValueError("reading %s: value must be a number, a boolean or a string" % name)
    if field == "v" and value - value != 0:  # NaN or +-inf: no JSON number, KPN refuses it
        raise ValueError("reading %s: %r is not a finite number" % (name, value))
    if type(name) is not str or not name or name[0] in "-:./_" or name.strip(_NAME_CHARS):
        raise ValueError("reading %r: not a valid SenML name" % (name,))
    rec = {"n": name, field: value}
    if unit:
        rec["u"] = unit
    if t is not None:
        rec["t"] = t
    return rec


def led_signal(board, led):
    """The board's signal(outcome) bound to the config's `led` actuator entry (or None), so a
    refused device blinks the pin the config gave the LED, never a pin a sensor has now. Here,
    in a module the loop keeps, because a closure keeps its whole module's globals alive: made
    in kpnthings.wiring, it would hold all of wiring's code through the loop."""
    show = getattr(board, "signal", None)
    if show is None:
        return None

    def signal(outcome):
        show(outcome, led)

    return signal


class Device:
    """One device: board + transport + actuators (+ optional outbox), driven by cycle()/run().

    `now` returns Unix seconds. `clock_trusted` (bool or callable; default: the board's
    CLOCK_TRUSTED) decides whether readings get a time: a board whose clock was never set must
    leave `bt` out so that KPN stamps the arrival time instead of a wrong one.
    `feed`, if given, is called between sleep slices, between packs and after every cycle
    (watchdog seam); if it has `ms_left()` (kpnthings.watchdog), a flush stops before a send
    that might outlast it.
    `link_ready`, if given, says whether the network can be used (wifi.WiFi.poll); while it says
    no, nothing is sent and the readings wait in the outbox (without one, they are lost).
    `link_drop`, if given, forces a fresh association when uplinks get no answer while the link
    says it is up; `reset` restarts the board (machine.reset by default) when reconnects or
    hours go by without an accepted uplink (kpnthings.flush_failed, config link_drop_after,
    reset_after_drops, reset_after_h).
    """

    config: "dict"
    board: "Any"
    transport: "Any"
    actuators: "Any"
    outbox: "Any"
    now: "Any"
    log: "Any"
    base_name: "str"
    clock_trusted: "Any"
    _sleep_ms: "Any"
    feed: "Any"
    link_ready: "Any"
    link_drop: "Any"
    reset: "Any"
    _silent: "int"
    _accepted_at: "int"
    max_body: "int"
    _write_pack: "Any"
    _body: "Any"
    _level: "int"
    idle_close_ms: "int"
    cycles_done: "int"
    _boot: "int"
    refused: "int"
    signal: "Any"
    _retry: "Any"
    _auth_wait: "Any"
    _hold_until: "Any"
    _held_by: "Any"
    _answer: "Any"

    def __init__(
        self,
        config,
        board,
        transport,
        actuators,
        outbox=None,
        now=time.time,
        log=print,
        clock_trusted=None,
        sleep_ms=None,
        feed=None,
        link_ready=None,
        signal=None,
        link_drop=None,
        reset=None,
    ):
        # Run once, at boot: its code is loaded for it and dropped after.
        from kpnthings import device_init, unload

        try:
            device_init.configure(
                self,
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
            )
        finally:
            unload("device_init")

    # -- logging -----------------------------------------------------------------------------
    # config log_level: "debug"/"info" log every uplink, "warning" only what went wrong,
    # "error" only what lost data or broke a cycle.

    def _info(self, line):
        if self._level <= 1:
            self.log(line)

    def _warn(self, line):
        if self._level <= 2:
            self.log(line)

    def _error(self, line):
        self.log(line)

    # -- one cycle ---------------------------------------------------------------------------

    def _trusted(self):
        # As the clock says it: false, true, or 2 (an RTC kept through the reset, not yet
        # set by NTP: clock.Clock).
        t = self.clock_trusted
        return t() if callable(t) else t

    def read(self):
        """The board's readings as records; a failing sensor costs its readings, not the loop."""
        try:
            readings = self.board.read_sensors()
        except Exception as e:  # one broken sensor must not stop the device
            self._warn("[kpn] sensors failed: %s: %s" % (type(e).__name__, e))
            return []
        trusted = self._trusted()
        t = self.now() if trusted else None
        tick = None
        if t is not None:  # clock.Clock.now() itself says None while untrusted
            t = int(t)
        if t is None or trusted == 2:
            from kpnthings.compat import ticks_ms

            # Dated from this once the clock is set in this boot (kpnthings.outbox_read); a
            # time from an RTC kept through the reset is marked by it too.
            tick = ticks_ms()
        out = []
        for reading in readings:
            try:
                out.append(reading_record(reading[0], reading[1], reading[2], t))
                if tick is not None:
                    out[-1]["k"] = tick
                    out[-1]["b"] = self._boot
            except (ValueError, IndexError, TypeError) as e:
                self.refused += 1
                self._warn("[kpn] reading skipped (%d since boot): %s" % (self.refused, e))
        return out

    def state_records(self):
        """The actuators' states as records: digital as vb, PWM as v."""
        if self.actuators is None:
            return []
        return [reading_record(name, value) for name, value in self.actuators.state_records()]

    def prepare(self):
        """Load the sending code (kpnthings.flush, the pack writer) and allocate the body
        buffer now. kpnthings.app calls this right after the boot's own modules are gone and
        collected: the heap is then at its emptiest, and these need contiguous blocks (1 KB of
        buffer, a few hundred bytes of bytecode) that a heap fragmented by cycles may lack.
        Without it, the first send does it."""
        from kpnthings import flush

        flush.prepare(self)

    def rest(self):
        """Before a long idle wait: the transport closes its connection and drops its code
        (if it can: uplink.Uplink.rest), the outbox its read-back code, and the pack writer and
        its buffer go too. The next send loads them again, into a heap that the wait left
        collected and unfragmented."""
        for part in (self.transport, self.outbox):  # the outbox drops its read-back code
            rest = getattr(part, "rest", None)
            if rest is not None:
                try:
                    rest()
                except Exception as e:  # a close that fails still leaves nothing to keep
                    self._warn("[kpn] rest failed: %s: %s" % (type(e).__name__, e))
        self._write_pack = self._body = None
        from kpnthings import unload

        unload("flush", "batch", "senml_text", "senml_exact")

    def cycle(self):
        """Read, send (with the backlog, through the outbox if there is one), apply the downlink.

        Returns the last transport Result, or None when there was nothing to send.
        """
        self.cycles_done += 1
        n = self.cycles_done
        hours = self.config.get("reset_after_h", 24)  # config.py INTS; 0: never
        if hours:
            from kpnthings.compat import ticks_diff, ticks_ms

            if ticks_diff(ticks_ms(), self._accepted_at) > hours * 3600000:
                from kpnthings import flush

                flush.reset(self, "no uplink accepted for %d h" % hours)
        readings = self.read()
        if self.link_ready is not None and not self._link_up():
            kept = 0
            if self.outbox is not None:
                self._store(readings)
                kept = len(self.outbox)
            self._warn("[kpn] uplink %d: network down, %d readings queued" % (n, kept))
            if self.feed is not None:
                self.feed()
            return None
        # (the wait for NTP is kpnthings.flush's: its code is not kept at rest)
        wait_ms = self._holding() if self._held_by != "no clock yet" else 0
        if wait_ms:
            kept = 0
            if self.outbox is not None:
                self._store(readings)
                kept = len(self.outbox)
            self._info(
                "[kpn] uplink %d: backing off after %s, next try in %d s; %d readings queued"
                % (n, self._held_by, (wait_ms + 999) // 1000, kept)
            )
            if self.feed is not None:
                self.feed()
            return None
        from kpnthings import flush

        result = flush.send(self, n, readings)
        if self.feed is not None:
            self.feed()
        return result

    def _link_up(self):
        ready = self.link_ready
        try:
            return ready is None or ready()
        except Exception as e:  # a broken driver costs this cycle's send, never its readings
            self._warn("[kpn] network check failed: %s: %s" % (type(e).__name__, e))
            return False

    def retry_now(self):
        """Forget the current backoff wait (or the wait for NTP): the next cycle sends (e.g.
        after a config fix)."""
        self._hold_until = self._held_by = None

    def _holding(self):
        """ms left before the next send may be tried (0: send now)."""
        if self._hold_until is None:
            return 0
        from kpnthings.compat import ticks_diff, ticks_ms

        left = ticks_diff(self._hold_until, ticks_ms())
        if left <= 0:
            self._hold_until = self._held_by = None  # the wait for NTP too: it never restarts
            return 0
        return left

    def _store(self, readings):
        """Append the cycle's readings to the outbox at once: on LittleFS each write costs
        about one block erase, so one per cycle, not one per reading. Returns the readings
        the flash did not take (the caller may still send them)."""
        if not readings:
            return readings
        try:
            refused = self.outbox.extend(readings)
        except OSError as e:
            self._error(
                "[kpn] outbox append failed (%s): %d readings not stored" % (e, len(readings))
            )
            return readings
        for rec, e in refused:
            # OutboxError: KPN would refuse it too, and take the good readings of its pack
            # down with it (the whole pack is dead-lettered as malformed).
            self.refused += 1
            self._error("[kpn] reading %s dropped: %s" % (rec.get("n"), e))
        return []

    # -- the loop ----------------------------------------------------------------------------

    def sleep(self, ms):
        """Sleep `ms`, in slices, feeding the watchdog seam and driving the link between them:
        a Wi-Fi glitch is over seconds after it happened, not cycles later."""
        while ms > 0:
            step = min(ms, _SLEEP_SLICE_MS)
            self._sleep_ms(step)
            ms -= step
            if self.feed is not None:
                self.feed()
            if self.link_ready is not None:
                self._link_up()

    def run(self, cycles=None, interval_s=None):
        """Cycle every interval_s seconds (config's interval_s by default); forever if cycles
        is None. A cycle that raises is logged and the loop goes on: a device in the field has
        nobody to restart it."""
        from kpnthings.compat import ticks_diff, ticks_ms

        if interval_s is None:
            interval_s = self.config.get("interval_s", 60)
        done = 0
        while cycles is None or done < cycles:
            start = ticks_ms()
            try:
                self.cycle()
            except Exception as e:  # logged, and the next cycle tries again
                self.error = type(e).__name__  # health's lastError (docs/health.md)
                self._error(
                    "[kpn] cycle %d failed: %s: %s" % (self.cycles_done, type(e).__name__, e)
                )
            done += 1
            if cycles is not None and done >= cycles:
                break
            interval_ms = int(interval_s * 1000)
            if interval_ms - ticks_diff(ticks_ms(), start) >= self.idle_close_ms:
                self.rest()
            left = interval_ms - ticks_diff(ticks_ms(), start)
            if left > 0:  # said, so that a quiet minute does not look like a hang
                self._info("[kpn] next cycle in %d s" % ((left + 999) // 1000))
                self.sleep(left)
        return done
