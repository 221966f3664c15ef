"""Small threaded HTTP(S) servers on 127.0.0.1 for the client tests, one behaviour each.

Each server runs `behaviour(conn, server)` per accepted connection in its own thread, records
every request it parsed, and is stopped (sockets closed, threads joined) by its context manager.
Also the runner that sends through kpnthings.client under the MicroPython unix port, and
`kpnthings mock-server` (the emulator) started in a subprocess.
"""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = str(ROOT / ".venv" / "bin" / "micropython")
MP_SCRIPT = Path(__file__).resolve().parent / "mp_client_send.py"
URL_LINE = re.compile(r"^KPN Things emulator listening on (http://127\.0\.0\.1:(\d+))$")


class Server:
    def __init__(self, behaviour, tls_context=None):
        self.behaviour = behaviour
        self.tls_context = tls_context
        self.requests = []  # (head bytes, body bytes)
        self.connections = 0
        self.errors = []
        self.sent_bytes = 0
        self.stopping = threading.Event()
        self._threads = []
        self._conns = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]

    def url(self, host="127.0.0.1"):
        scheme = "https" if self.tls_context else "http"
        return "%s://%s:%d" % (scheme, host, self.port)

    def __enter__(self):
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except OSError:
                    pass
        for t in list(self._threads):
            t.join(5)
        self._listener.close()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn):
        try:
            conn.settimeout(10)
            if self.tls_context is not None:
                conn = self.tls_context.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._conns.append(conn)
            self.behaviour(conn, self)
        except (OSError, ssl.SSLError, ValueError) as e:
            self.errors.append(repr(e))
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def send(self, conn, data):
        conn.sendall(data)
        self.sent_bytes += len(data)


def read_request(conn, server):
    """Read one request (head + Content-Length body); None at end of stream."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        rest += chunk
    server.requests.append((head, rest))
    return head, rest


def response(status, body=b"", headers=()):
    lines = ["HTTP/1.1 %d Status" % status, "Content-Length: %d" % len(body)]
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- behaviours ---------------------------------------------------------------------------


def answers(*replies, close_after=False):
    """Answer each request on a connection with the next reply (bytes) in turn, keeping the
    connection open between requests (unless close_after)."""
    replies = list(replies)

    def behaviour(conn, server):
        while replies and not server.stopping.is_set():
            if read_request(conn, server) is None:
                return
            server.send(conn, replies.pop(0))
            if close_after:
                return

    return behaviour


def hang(conn, server):
    """Read the request, then never answer."""
    read_request(conn, server)
    server.stopping.wait(30)


def truncated(conn, server):
    read_request(conn, server)
    server.send(conn, b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[{"bn":"urn:')


def oversized(conn, server):
    read_request(conn, server)
    body = b"[" + b" " * 100000 + b"]"
    server.send(conn, response(200, body))


def slow_drip(conn, server):
    """A 200 whose promised body arrives one byte every 50 ms: it would take minutes."""
    read_request(conn, server)
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n")
    for _ in range(4000):
        if server.stopping.wait(0.05):
            return
        server.send(conn, b" ")


def endless_headers(conn, server):
    """A header block that never ends, each line short and quick."""
    read_request(conn, server)
    server.send(conn, b"HTTP/1.1 200 OK\r\n")
    for i in range(100000):
        if server.stopping.is_set():
            return
        server.send(conn, b"X-%d: y\r\n" % i)
        time.sleep(0.001)


def closed_port():
    """A 127.0.0.1 port with nothing listening (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- running the client -------------------------------------------------------------------


def result_dict(r):
    return {
        "status": r.status,
        "outcome": r.outcome,
        "downlink": [_record(x) for x in r.downlink],
        "error": r.error,
    }


def _record(x):
    if isinstance(x, dict):
        return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in x.items()}
    return {k: v for k, v in sorted(vars(x).items()) if not k.startswith("_")}


def send_cpython(args):
    """Send each body of args["bodies"] through one Client under CPython; list of result dicts,
    or {"construct_error": text} when the Client refused its arguments."""
    from kpnthings import client

    cadata = None
    if args.get("ca_path"):
        cadata = Path(args["ca_path"]).read_bytes()
    if args.get("ca_paths"):
        cadata = list(args["ca_paths"])  # read by the client, as the firmware passes them
    try:
        c = client.Client(
            args["dvnuuid"],
            args["secret"],
            url=args["url"],
            timeout=args.get("timeout", 2),
            cadata=cadata,
            insecure=args.get("insecure", False),
            max_response=args.get("max_response", 4096),
        )
    except ValueError as e:
        return {"construct_error": str(e)}
    try:
        results = [result_dict(c.send(b.encode())) for b in args["bodies"]]
    finally:
        c.close()
    assert args["secret"] not in json.dumps(results) + repr(c)
    return results


def send_micropython(args, timeout=60):
    """The same through the MicroPython unix port (lib/ sources), in a subprocess."""
    env = dict(os.environ)
    env["MICROPYPATH"] = "lib:.frozen"
    proc = subprocess.run(
        [MICROPYTHON, str(MP_SCRIPT)],
        input=json.dumps(args),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, "micropython failed:\n%s\n%s" % (proc.stdout, proc.stderr)
    # Secret hygiene: nothing the device prints may carry the secret.
    assert args["secret"] not in proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


RUNNERS = {"cpython": send_cpython, "micropython": send_micropython}


def start_mock_server(tmp_path, *extra, env=None):
    """`kpnthings mock-server` in a subprocess on a free port, its database and working folder
    in tmp_path, with the `extra` options. KPNTHINGS_API_TOKEN is left out of its environment
    unless `env` sets it. It prints its URL as the first line on stdout."""
    cmd = [
        sys.executable,
        "-m",
        "kpnthings_tools.cli",
        "mock-server",
        "--port",
        "0",
        "--db",
        str(tmp_path / "emu.sqlite3"),
        *extra,
    ]
    environ = {k: v for k, v in os.environ.items() if k != "KPNTHINGS_API_TOKEN"}
    environ.update(env or {})
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(tmp_path),
        env=environ,
    )


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def first_line_url(proc):
    assert proc.stdout is not None
    line = proc.stdout.readline().rstrip("\n")
    m = URL_LINE.match(line)
    assert m, line
    return m.group(1), int(m.group(2))
