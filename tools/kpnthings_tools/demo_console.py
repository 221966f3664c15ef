"""What `make demo` prints and asks at the terminal: the transcript of the emulator's, the
device's and the demo's lines, and, at the end, whether to leave the emulator running."""

import os
import sys
import threading
import time


class Transcript:
    """Prints `source | line` rows from several threads without mixing them up."""

    def __init__(self, out=None):
        self._out = out or (lambda s: print(s, flush=True))
        self._lock = threading.Lock()
        self.lines = []

    def __call__(self, source, line):
        row = "%-8s | %s" % (source, line)
        with self._lock:
            self.lines.append(row)
            self._out(row)

    def text(self, line=""):
        with self._lock:
            self.lines.append(line)
            self._out(line)


# How long the question at the end waits for an answer before the demo ends as if told no.
ASK_TIMEOUT_S = 60


def ask_to_keep(stdin=None, stdout=None, timeout_s=ASK_TIMEOUT_S):
    """At a terminal, ask whether to leave the emulator and its dashboard running; True on yes.
    Never asks when stdin is not a terminal (CI, tests, a pipe), so nothing ever waits there,
    and takes no answer within timeout_s as no."""
    import select

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        if not stdin.isatty():
            return False
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False
    stdout.write("\nLeave the emulator and its dashboard running to look around? [y/N] ")
    stdout.flush()
    try:
        ready, _, _ = select.select([stdin], [], [], timeout_s)
        answer = stdin.readline() if ready else ""
    except KeyboardInterrupt:  # Ctrl-C at the question is a no, not a traceback
        answer = ""
    if not answer.endswith("\n"):
        stdout.write("\n")
    return answer.strip().lower() in ("y", "yes")


def stay(say, url, dvnuuid, cfg_path):
    """Serve until Ctrl-C (or SIGTERM), after saying where and what to do there."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    # Set before anything is said, so a SIGTERM sent once the URL is out stops cleanly.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        python = sys.executable
        if not os.path.relpath(python).startswith(".."):
            python = os.path.relpath(python)
        say.text()
        say.text("The emulator and its dashboard are running: %s/" % url)
        say.text("  device %s; run the firmware again against it with" % dvnuuid)
        say.text("  %s -m kpnthings_tools.host_run %s" % (python, cfg_path))
        say.text("Ctrl-C stops them (the dashboard's own polling is not logged).")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        say.text()
        say.text("emulator stopped")
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
