"""Deep sleep between cycles (config "sleep": "deep", ESP32): each cycle is one boot.

kpnthings.wiring loads this for a deep config only, and a light config deploys none of it. A
wake starts from main.py like any boot: the config is checked and the outbox opened from flash;
then Device.run here does one cycle and calls machine.deepsleep, which does not return: the
board resets into the next wake.

- Sense, and send when due. Every wake reads its sensors and stores the readings in the outbox
  on flash, which carries them across the sleep. A wake sends (Wi-Fi up, then the outbox drained
  as the light loop drains it, a few packs at most) only when due: the first wake after a
  power-on or a reset that was not a wake, every send_every_cycles-th cycle, the last of
  `cycles`, while the outbox still holds a backlog after a send, and while NTP has never set
  the clock. A wake that is not due never creates the WLAN, let alone starts it; nor does one
  that the backoff of a failed send holds back.
- What must outlive the sleep sits in RTC memory (machine.RTC().memory(): 2 KB on the ESP32,
  kept through deep sleep and resets, cleared at power-on), one write per wake instead of a
  flash write: the boot and cycle counts, the cycle of the next send, whether NTP set the clock
  and when, the backoff (its attempts, and the RTC second before which nothing is tried) and
  when the wait for NTP began.
- The clock: the ESP32's RTC runs through deep sleep, so a clock NTP set in an earlier wake is
  trusted at once (clock.Clock.trusted True: no NTP, readings plainly dated) until ntp_resync_h
  has gone by; then it is believed as an RTC's (2) and NTP is asked at the next send.
"""

import struct

from kpnthings import device
from kpnthings.compat import const, ticks_add, ticks_diff, ticks_ms

# magic, then boots, cycle, next_send, ntp_at, hold_at, undated_at (u32), good, tries, auth (u8),
# health (i32: Device.health, the cycle of the last health set KPN accepted, or minus the boot
# count while the boot's first set waits); a CRC-32 of all that follows it.
_FMT = "<4sIIIIIIBBBi"
_MAGIC = b"KDS2"
# A wake's Wi-Fi join: an ESP32 associates and gets a DHCP lease in 0.7-1.6 s; past this the
# wake gives up and backs off (retry_base_s, ...) like a failed send.
_LINK_WAIT_MS = const(7000)
# A shorter deep sleep costs more in boot than it saves.
_MIN_SLEEP_MS = const(1000)
# The state as configure() read it: [boots, cycle, next_send, ntp_at, hold_at, undated_at,
# good, tries, auth, health]; and [clock, woke, ticks], woke: this boot is a wake from deep
# sleep, and its time awake counts from ticks (configure's, early in the boot).
_state = []
_kept = []


def read_memory(machine):
    """The state the last sleep (or the last boot) left in RTC memory, or None: never written
    since power-on, or not ours."""
    try:
        raw = bytes(machine.RTC().memory())
    except (AttributeError, OSError):  # a port without RTC memory
        return None
    size = struct.calcsize(_FMT)
    if len(raw) != size + 4 or raw[:4] != _MAGIC:
        return None
    from kpnthings.outbox import crc32

    if struct.unpack("<I", raw[size:])[0] != crc32(raw[:size]):
        return None
    return list(struct.unpack(_FMT, raw[:size])[1:])


def write_memory(machine, st):
    from kpnthings.outbox import crc32

    body = struct.pack(_FMT, _MAGIC, *st)
    machine.RTC().memory(body + struct.pack("<I", crc32(body)))


def configure(cfg, clock, log):
    """At boot, before the clock is checked (kpnthings.wiring): read what the last sleep kept,
    count this boot, and trust the clock from the RTC when NTP set it since power-on and less
    than ntp_resync_h ago."""
    import machine

    st = read_memory(machine) or [0] * 10
    st[0] += 1
    _state[:] = st
    _kept[:] = [clock, machine.reset_cause() == machine.DEEPSLEEP_RESET, ticks_ms()]
    hours = cfg.get("ntp_resync_h")
    hours = 12 if hours is None else hours
    if st[6] and clock.trust_rtc():  # and the RTC shows a time after the build's day
        if not hours or clock.unix_time() - st[3] < hours * 3600:
            clock.trusted = True
            log("[clock] trusted from the RTC after a deep sleep: %d" % clock.unix_time())


def connect_wifi(cfg):
    """The link for kpnthings.device: made at its first poll, so a wake that sends nothing
    never touches the radio."""
    return _Link(cfg)


class _Link:
    """wifi.WiFi, created when first polled, and trusted once up: a wake cannot spend seconds
    watching a link settle (a flapping one fails the send, which backs off)."""

    state = "down"

    def __init__(self, cfg):
        self._cfg = cfg
        self._wifi = None

    def poll(self):
        if self._wifi is None:
            from kpnthings import wifi

            cfg = self._cfg
            self._wifi = wifi.WiFi(cfg["wifi_ssid"], cfg["wifi_password"], stable_ms=0)
        up = self._wifi.poll()
        self.state = self._wifi.state
        return up

    def drop(self):
        if self._wifi is not None:
            self._wifi.drop()
            self.state = self._wifi.state


class Device(device.Device):
    """kpnthings.device.Device whose run() is one wake: a cycle (a send if due), then
    machine.deepsleep for what is left of interval_s."""

    def prepare(self):
        """Nothing at boot: a wake that only stores needs no pack writer (a send loads it)."""

    def run(self, cycles=None, interval_s=None):
        st = _state
        clock, woke, t0 = _kept
        if interval_s is None:
            interval_s = self.config.get("interval_s", 60)
        n = st[1] + 1
        now = self.now()
        last = cycles is not None and n >= cycles
        due = now >= st[4] and (
            not woke or last or n >= st[2] or clock.trusted is not True or self.outbox is None
        )
        # Whatever fails in the cycle, the wake ends in the sleep: a board left awake at the
        # REPL would drain the battery in a day, and the next wake tries again.
        try:
            if due:
                self._retry.attempt = st[7]
                self._auth_wait.attempt = st[8]
                wait = self.config.get("undated_wait_s")
                held = self._held_by == "no clock yet"
                if held and st[5] and now - st[5] >= (120 if wait is None else wait):
                    self.retry_now()  # NTP was waited for over earlier wakes: they go undated
                up = self._link_wait()
                self.cycles_done = st[1]
                if woke and st[9]:
                    # A wake is not a boot to the health records (kpnthings.flush.health): they
                    # fall due health_every cycles after the last set, and the whole set (boot
                    # count, reset cause) follows a real reset only.
                    self.health = st[9]
                self.cycle()
                now = self.now()
                left = self._holding()
                if self._held_by == "no clock yet":
                    st[5] = st[5] or now  # the wait for NTP began (the next wake is due anyway)
                elif left:  # a failed send's backoff, carried across the sleeps
                    st[4] = now + (left + 999) // 1000
                elif not up:
                    st[4] = now + (self._retry.next_delay() + 999) // 1000
                    self._warn(
                        "[sleep] no Wi-Fi after %d s: readings wait" % (_LINK_WAIT_MS // 1000)
                    )
                else:
                    st[4] = 0
                    # A backlog beyond one wake's packs goes on at the next wake.
                    every = self.config.get("send_every_cycles") or 1
                    st[2] = n + (1 if len(self.outbox or ()) else every)
                st[7] = self._retry.attempt
                st[8] = self._auth_wait.attempt
            else:
                self.cycles_done = n
                self._store(self.read())
                self._info(
                    "[sleep] cycle %d: stored, %d readings queued; sending at cycle %d"
                    % (n, len(self.outbox or ()), max(st[2], n + 1))
                )
        except Exception as e:
            self._error("[kpn] cycle %d failed: %s: %s" % (n, type(e).__name__, e))
            if due:  # tried again after a backoff, not at every wake
                st[4] = self.now() + (self._retry.next_delay() + 999) // 1000
                st[7] = self._retry.attempt
        if due:
            st[9] = getattr(self, "health", 0)
        if clock.syncs:  # NTP answered in this wake
            st[3] = clock.unix_time()
            st[6] = 1
            st[5] = 0
        st[1] = n
        import machine

        write_memory(machine, st)
        if last:
            return 1
        awake = ticks_diff(ticks_ms(), t0)
        ms = max(int(interval_s * 1000) - awake, _MIN_SLEEP_MS)
        self._info("[sleep] cycle %d: awake %d ms, deep sleep %d ms" % (n, awake, ms))
        if due:  # what a reset would cut: the TLS session, the association
            close = getattr(self.transport, "close", None)
            try:
                if close is not None:
                    close()
                if self.link_drop is not None:
                    self.link_drop()
            except Exception as e:  # the sleep ends both anyway
                self._warn("[sleep] close failed: %s: %s" % (type(e).__name__, e))
        machine.deepsleep(ms)
        return 1  # only a stand-in machine returns

    def _link_wait(self):
        """Bring the link up for this wake's send: True once up, False after _LINK_WAIT_MS."""
        if self.link_ready is None:
            return True
        deadline = ticks_add(ticks_ms(), _LINK_WAIT_MS)
        while not self._link_up():
            if self.feed is not None:
                self.feed()
            if ticks_diff(deadline, ticks_ms()) <= 0:
                return False
            self._sleep_ms(50)
        return True
