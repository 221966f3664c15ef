"""`make bench`: the deep-sleep duty cycle (config "sleep": "deep", issue 20 part 3) measured on
the unix port, and turned into a battery-life estimate for an ESP32.

Measured: the real firmware (firmware/main.py, the .mpy tree of the bench) boots once per wake
on the unix port, with tests/fakes/machine.py keeping RTC memory in a file between the
processes, against the emulator over verified HTTPS. A byte-counting TCP relay in front of the
emulator counts every byte each way (TLS handshake, headers, body). Per wake: the time awake
(the process's wall time minus the deep sleep the fake machine spent), Wi-Fi started or not, and
the bytes. Two schedules: a send every wake, and a send every 12th.

Assumed (ESP32 datasheet v4.x, table "Power consumption by power modes", and the issue's
figures; each a constant below, printed with the estimate): the current in each phase, the
time an ESP32 takes to wake and join Wi-Fi, and the TLS handshake's time on the chip, which the
unix port's far faster CPU cannot show. The estimate is a model to compare schedules, not a
measurement of a board: measure yours with a meter in series.
"""

import json
import socket
import tempfile
import threading
import time
from pathlib import Path

from .. import emulator, provision
from . import firmware_run, runtimes

# -- assumed figures: (value, where it comes from) ------------------------------------------------
ASSUMED = {
    "wifi_tx_ma": (240, "ESP32 datasheet: Wi-Fi transmit, 802.11b 1 Mbps at 19.5 dBm (~240 mA)"),
    "wifi_rx_ma": (110, "ESP32 datasheet: Wi-Fi receive/listen (~95-110 mA)"),
    "cpu_ma": (50, "ESP32 datasheet: modem sleep, CPU on and radio off, 30-68 mA (160 MHz)"),
    "light_ma": (
        40,
        "light loop: modem sleep with the association kept between cycles, within the"
        " datasheet's 30-68 mA (assumed average)",
    ),
    "deep_chip_ma": (0.010, "ESP32 datasheet: deep sleep, RTC timer and RTC memory (10 uA)"),
    "deep_board_ma": (
        5.0,
        "a development board in deep sleep: LDO regulator and USB-UART bridge (assumed; boards"
        " vary from 1 to 10 mA)",
    ),
    "wake_s": (0.25, "wake from deep sleep to main.py: ROM and 2nd-stage bootloader, MicroPython"),
    "join_dhcp_s": (1.6, "issue 20: wake + Wi-Fi association with DHCP, before TLS"),
    "join_static_s": (0.7, "issue 20: wake + Wi-Fi association with a static IP"),
    "tls_s": (1.0, "a TLS 1.2 handshake (ECDHE, RSA-2048 chain verified) by mbedTLS on the ESP32"),
    "tx_mbit_s": (6, "802.11g/n airtime at a modest rate: TX time of the bytes sent"),
    "battery_mah": (2000, "battery: 2,000 mAh, all usable (an 18650 or 3 AA cells, derated)"),
}
SCHEDULES = (  # (interval_s, send_every_cycles): the estimate's rows
    (60, 1),
    (300, 1),
    (300, 12),
    (900, 4),
)
_WAKE_BOARD = """from boards.unix import PINS, OUTPUT_PINS, ACTUATORS, read_sensors
import machine

HAS_WIFI = True  # the fake network: the wake's Wi-Fi is started, or not, as on an ESP32
CLOCK_TRUSTED = True  # the host's clock: no NTP in the figures (one 48-byte UDP exchange at
# power-on and every ntp_resync_h on a board)


def rtc_kept():  # as boards/esp32.py
    return machine.reset_cause() in (machine.DEEPSLEEP_RESET, machine.WDT_RESET, machine.SOFT_RESET)
"""


class Relay:
    """A TCP relay to `port` on 127.0.0.1 that counts the bytes each way (up: device to server)."""

    def __init__(self, port):
        self.port = port
        self.up = self.down = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url_port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.port))
            for a, b, up in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, up), daemon=True).start()

    def _pipe(self, a, b, up):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                with self._lock:
                    if up:
                        self.up += len(data)
                    else:
                        self.down += len(data)
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def take(self):
        """(up, down) since the last take."""
        time.sleep(0.05)  # the last bytes of a closed connection
        with self._lock:
            out = (self.up, self.down)
            self.up = self.down = 0
        return out

    def close(self):
        self._server.close()


def run_wakes(runtime, arch, chain, cycles, every):
    """[{"awake_ms", "sent", "wifi", "up", "down", "body"}] for each wake of one deep run."""
    ident = provision.new_identity()
    emu = emulator.Emulator(":memory:", devices=[(ident.dvnuuid, ident.secret)], log=_quiet)
    server = emu.serve(tls_cert=str(chain.cert), tls_key=str(chain.key))
    relay = Relay(int(server.url.rsplit(":", 1)[1]))
    wakes = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            dirs = firmware_run.board_like_path(tmp, arch)
            (tmp / "w").mkdir()
            (tmp / "w" / "wakeboard.py").write_text(_WAKE_BOARD)
            (tmp / "ca.der").write_bytes(Path(chain.ca_der).read_bytes())
            cfg = {
                "dvnuuid": ident.dvnuuid,
                "secret": ident.secret,
                "url": "https://127.0.0.1:%d" % relay.url_port,
                "board": "wakeboard",
                "wifi_ssid": "bench",
                "wifi_password": "bench-password",
                "ca_file": "ca.der",
                "interval_s": 1,
                "cycles": cycles,
                "timeout_s": 5,
                "sleep": "deep",
                "send_every_cycles": every,
            }
            (tmp / "config.json").write_text(json.dumps(cfg))
            env = {"KPN_CONFIG": str(tmp / "config.json"), "KPN_FAKE_RTC": str(tmp / "rtc")}
            for _ in range(cycles):
                t0 = time.monotonic()
                proc = runtimes.run(runtime, ["w"] + dirs, "main.py", env_extra=env, cwd=tmp)
                wall_ms = (time.monotonic() - t0) * 1000
                out = proc.stdout + proc.stderr
                if proc.returncode != 0 or "Traceback" in out:
                    raise RuntimeError("wake %d failed:\n%s" % (len(wakes) + 1, out[-2000:]))
                slept = [x for x in out.splitlines() if x.startswith("[machine] deepsleep ")]
                slept_ms = int(slept[0].split()[2]) if slept else 0
                up, down = relay.take()
                bodies = [
                    int(x.rsplit(" bytes ->", 1)[0].rsplit(", ", 1)[1])
                    for x in out.splitlines()
                    if x.startswith("[kpn] uplink ") and " bytes -> " in x
                ]
                wakes.append(
                    {
                        "awake_ms": round(wall_ms - slept_ms),
                        "sent": bool(bodies),
                        "wifi": "[wifi] connecting to" in out,
                        "up": up,
                        "down": down,
                        "body": sum(bodies),
                        "readings": sum(
                            int(x.split(": ", 1)[1].split(" ", 1)[0])
                            for x in out.splitlines()
                            if x.startswith("[kpn] uplink ") and " bytes -> " in x
                        ),
                    }
                )
                if "[boot] done after" in out:
                    break
        accepted = [
            m for m in emu.messages(ident.dvnuuid, limit=1000) if m["outcome"] == "accepted"
        ]
        # The readings KPN stored: the health records the first send after the power-on
        # carries (docs/health.md; on by default) are not readings.
        from ..emulator_health import HEALTH_NAMES

        stored = sum(
            1
            for m in accepted
            for r in m["records"]
            if r["n"].rsplit(":", 1)[-1] not in HEALTH_NAMES
        )
        return wakes, stored
    finally:
        relay.close()
        server.shutdown()


def _quiet(line):
    pass


def _mean(xs):
    return round(sum(xs) / len(xs)) if xs else None


def summary(wakes):
    """Mean awake ms of the wakes that stored only and of those that sent (the power-on wake
    left out: it sends whatever the schedule), and the bytes of a send."""
    later = wakes[1:]
    store = [w for w in later if not w["sent"]]
    send = [w for w in later if w["sent"]]
    return {
        "store_awake_ms": _mean([w["awake_ms"] for w in store]),
        "send_awake_ms": _mean([w["awake_ms"] for w in send]),
        "send_up_bytes": _mean([w["up"] for w in send]),
        "send_down_bytes": _mean([w["down"] for w in send]),
        "send_body_bytes": _mean([w["body"] for w in send]),
        "wifi_on_store_wakes": sum(1 for w in store if w["wifi"]),
        "wakes": len(wakes),
    }


def estimate(store_ms, send_ms, up_bytes, down_bytes, interval_s, every, deep_ma, join="dhcp"):
    """Battery life in days, and the average current in mA, of one schedule: every `every`-th
    wake sends, the others store; `store_ms`/`send_ms` are the unix port's times for the
    firmware's own work, to which the assumed wake, Wi-Fi join and TLS times are added."""
    a = {k: v[0] for k, v in ASSUMED.items()}
    join_s = a["join_dhcp_s"] if join == "dhcp" else a["join_static_s"]
    store_s = a["wake_s"] + store_ms / 1000
    tx_s = up_bytes * 8 / (a["tx_mbit_s"] * 1e6)
    # A send wake: the wake and join (radio listening), the TLS handshake and the exchange
    # (listening, the CPU busy), the bytes out at TX current. The join figure includes the wake.
    send_s = join_s + a["tls_s"] + send_ms / 1000 + tx_s
    send_mas = (join_s + a["tls_s"] + send_ms / 1000) * a["wifi_rx_ma"] + tx_s * a["wifi_tx_ma"]
    store_mas = store_s * a["cpu_ma"]
    cycle_s = interval_s * every
    awake_s = send_s + (every - 1) * store_s
    mas = send_mas + (every - 1) * store_mas + max(cycle_s - awake_s, 0) * deep_ma
    avg_ma = mas / cycle_s
    return {
        "avg_ma": round(avg_ma, 3),
        "days": round(a["battery_mah"] / avg_ma / 24, 1),
        "awake_s_per_send_cycle": round(awake_s, 2),
        "down_bytes": down_bytes,
    }


def measure(arch="xtensawin", chain=None):
    """The figures: per-wake measurements of two runs, and the estimate for each schedule."""
    runtime = runtimes.stock32() or runtimes.MP64
    try:
        every_wake, stored_a = run_wakes(runtime, arch, chain, cycles=4, every=1)
        batched, stored_b = run_wakes(runtime, arch, chain, cycles=13, every=12)
    except Exception as e:  # one failing part must not lose every other figure
        return {"error": "%s: %s" % (type(e).__name__, e), "runtime": runtime.name}
    a, b = summary(every_wake), summary(batched)
    store_ms = b["store_awake_ms"]
    rows = []
    for interval_s, every in SCHEDULES:
        sent = b if every > 1 else a
        for board, key in (("chip", "deep_chip_ma"), ("dev board", "deep_board_ma")):
            est = estimate(
                store_ms,
                sent["send_awake_ms"],
                sent["send_up_bytes"],
                sent["send_down_bytes"],
                interval_s,
                every,
                ASSUMED[key][0],
            )
            rows.append(dict(est, interval_s=interval_s, every=every, board=board))
    light = ASSUMED["battery_mah"][0] / ASSUMED["light_ma"][0] / 24
    return {
        "runtime": runtime.name,
        "every_wake": a,
        "every_12th": b,
        "readings_stored": {"every_wake": stored_a, "every_12th": stored_b},
        "estimates": rows,
        "light_days": round(light, 1),
        "assumed": {k: {"value": v[0], "source": v[1]} for k, v in ASSUMED.items()},
    }


def assumptions():
    """The assumed figures and their sources, printed under the table."""
    lines = ["The deep-sleep battery estimate assumes (a model to compare schedules):"]
    for key, (value, source) in ASSUMED.items():
        lines.append("- %s = %s: %s" % (key, value, source))
    return "\n".join(lines)


def table_rows(r):
    """The rows `make bench` prints: figure | ours | baseline | ratio | target | met."""
    d = r.get("deep_sleep")
    if not d or "error" in d:
        why = (d or {}).get("error", "not measured")
        return [("deep sleep: awake time per wake", why, "", "", "", "not measured")]
    a, b = d["every_wake"], d["every_12th"]
    rows = [
        (
            "deep sleep: awake per wake that stores, %s (ms)" % d["runtime"],
            b["store_awake_ms"],
            "",
            "",
            "no Wi-Fi",
            "met" if b["wifi_on_store_wakes"] == 0 else "NOT met",
        ),
        ("deep sleep: awake per wake that sends 1 cycle (ms)", a["send_awake_ms"], "", "", "", ""),
        (
            "deep sleep: awake per wake that sends 12 cycles (ms)",
            b["send_awake_ms"],
            "",
            "",
            "",
            "",
        ),
        (
            "deep sleep: bytes per send of 1 / 12 cycles, up+down (TLS incl.)",
            "%s+%s / %s+%s"
            % (a["send_up_bytes"], a["send_down_bytes"], b["send_up_bytes"], b["send_down_bytes"]),
            "",
            "",
            "",
            "",
        ),
    ]
    for e in d["estimates"]:
        rows.append(
            (
                "battery days, %d mAh, every %d s, send every %d, %s (model)"
                % (ASSUMED["battery_mah"][0], e["interval_s"], e["every"], e["board"]),
                e["days"],
                d["light_days"],
                round(e["days"] / d["light_days"], 1),
                "baseline: light loop",
                "",
            )
        )
    return rows
