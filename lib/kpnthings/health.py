"""Health records (docs/health.md): what a board in the field says about itself, every
health_every cycles and always in the first pack after a boot. kpnthings.flush loads this only
when they fall due and drops it after, so a board between two health reports holds none of it.

One function, and every name it sends, every unit and every name of the port it looks up built
at run time from one bytes constant: each str literal or identifier of a loaded module is
interned by the board for good (kpnthings.__init__), and `getattr` interns a port's name
(reset_cause, idf_heap_info, WLAN...) only on the port that runs the line, whose own it is.
"""

from kpnthings.compat import const

# ticks_ms wraps after 2**30 ms on the boards (about 12.4 days): the uptime is put back together
# from a guess within half a period, the cycles done times interval_s (the loop's spacing).
_TICKS_PERIOD = const(1 << 30)
# The GC heap's largest block is found by halving, down to this many bytes.
_STEP = const(64)
# Record names, units, the boot count's files, machine.reset_cause()'s values 1-5 (power-on
# .. soft), the port's names and open()'s mode, split at run time; each _NAME below is its
# index in the list (a const: mpy-cross folds it, so the names below cost the board nothing).
_WORDS = const(
    b"heapFree heapLargest uptime bootCount resetCause outboxDepth droppedReadings deadLetters"
    b" wifiRssi firmware lastError B s dBm boots boots.tmp power-on hard watchdog deepsleep"
    b" soft reset_cause esp32 idf_heap_info HEAP_DATA network WLAN STA_IF rssi rp2 w"
)
_HEAP_FREE = const(0)
_HEAP_LARGEST = const(1)
_UPTIME = const(2)
_BOOT_COUNT = const(3)
_RESET_CAUSE = const(4)
_OUTBOX_DEPTH = const(5)
_DROPPED = const(6)
_DEAD_LETTERS = const(7)
_WIFI_RSSI = const(8)
_FIRMWARE = const(9)
_LAST_ERROR = const(10)
_BYTES = const(11)
_SECONDS = const(12)
_DBM = const(13)
_BOOTS_FILE = const(14)
_BOOTS_TMP = const(15)
_CAUSES = const(15)  # + reset_cause(), 1-5
_RESET_CAUSE_FN = const(21)
_ESP32 = const(22)
_IDF_HEAP_INFO = const(23)
_HEAP_DATA = const(24)
_NETWORK = const(25)
_WLAN = const(26)
_STA_IF = const(27)
_RSSI = const(28)
_RP2 = const(29)
_WRITE = const(30)


def records(dev, n):
    """The health records of cycle `n`, which kpnthings.flush adds to the pack's states.

    The first set of a boot (dev.health unset, or negative) is the whole set: the boot count,
    the reset cause and the firmware change only with a boot, so only it carries them. Until a
    pack that carries it is accepted (then kpnthings.flush sets dev.health to the cycle), the
    boot's number waits in dev.health as -boots: the boot count file is written once a boot."""
    import gc
    import sys

    from kpnthings.compat import ticks_ms

    w = [x.decode() for x in _WORDS.split()]
    gc.collect()
    free = getattr(gc, "mem_free", None)  # CPython (the tests) has none: no heap records
    free = free() if free else 0
    port = sys.platform
    if not free:
        big = 0
    elif port == w[_ESP32]:  # the IDF heap's largest block: TLS and the GC heap's growth use it
        mod = __import__(w[_ESP32])
        big = max(
            [r[2] for r in getattr(mod, w[_IDF_HEAP_INFO])(getattr(mod, w[_HEAP_DATA]))] or [0]
        )
    else:  # the largest bytearray the GC heap allocates, found by halving
        big, top = 0, free
        while top - big > _STEP:
            mid = (big + top) // 2
            try:
                mod = bytearray(mid)
                big = mid
            except MemoryError:
                top = mid
            mod = None
    ms = ticks_ms()
    wraps = (n * dev.config.get("interval_s", 60) * 1000 - ms + _TICKS_PERIOD // 2) // _TICKS_PERIOD
    out = [{"n": w[_UPTIME], "v": (ms + max(0, wraps) * _TICKS_PERIOD) // 1000, "u": w[_SECONDS]}]
    if free:
        out += [
            {"n": w[_HEAP_FREE], "v": free, "u": w[_BYTES]},
            {"n": w[_HEAP_LARGEST], "v": big, "u": w[_BYTES]},
        ]
    first = getattr(dev, "health", 0)
    box = dev.outbox
    if first <= 0:
        from kpnthings import __version__

        if box is not None:
            if not first:  # counted in a small file beside the outbox, once a boot
                import os

                x = box._path(w[_BOOTS_FILE])
                try:
                    with open(x) as f:
                        first = -int(f.read())
                except (OSError, ValueError):
                    first = 0
                first -= 1
                dev.health = first
                try:  # written whole, then renamed: a power cut leaves one or the other
                    with open(box._path(w[_BOOTS_TMP]), w[_WRITE]) as f:
                        f.write(str(-first))
                    os.rename(box._path(w[_BOOTS_TMP]), x)
                except OSError:
                    pass  # a full flash costs the count, never the uplink
            out.append({"n": w[_BOOT_COUNT], "v": -first})
        mod = None
        if port == w[_ESP32] or port == w[_RP2] or "machine" in sys.modules:  # unix: a stand-in
            import machine

            mod = getattr(machine, w[_RESET_CAUSE_FN], None)
        if mod is not None:
            x = mod()
            out.append({"n": w[_RESET_CAUSE], "vs": w[_CAUSES + x] if 1 <= x <= 5 else str(x)})
        out.append({"n": w[_FIRMWARE], "vs": __version__})
    if box is not None:
        out.append({"n": w[_OUTBOX_DEPTH], "v": len(box)})
        if first <= 0 and not box.dropped:  # else flush's own droppedReadings says it
            out.append({"n": w[_DROPPED], "v": 0})
        out.append({"n": w[_DEAD_LETTERS], "v": getattr(box, "dead_count", 0)})
    if getattr(dev.board, "HAS_WIFI", False):
        try:
            mod = __import__(w[_NETWORK])
            x = getattr(mod, w[_WLAN])(getattr(mod, w[_STA_IF])).status(w[_RSSI])
        except Exception:  # not associated, or a port without it: no record
            x = None
        if x is not None:
            out.append({"n": w[_WIFI_RSSI], "v": x, "u": w[_DBM]})
    x = getattr(dev, "error", None)
    if x:
        out.append({"n": w[_LAST_ERROR], "vs": x})
    return out
