"""Runs every portable test under CPython and under the MicroPython unix port, three ways.

tests/portable/test_*.py are collected twice over:
- by pytest itself, on CPython (their ids get the suffix [cpython]);
- by MicroPythonFile below, once per MicroPython runtime:
    [micropython-src]    the .py sources of lib/ and boards/
    [mpy-xtensawin]      the .mpy files mpy-cross builds for the ESP32
    [mpy-armv6m]         the .mpy files mpy-cross builds for the RP2040 (Pico W)
  Each (module, runtime) pair runs in one `micropython tests/mp_run.py MODULE` process and every
  test becomes its own pytest item, so a failure names the test and the runtime.
The terminal summary ends with a table of counts per runtime.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
PORTABLE = TESTS / "portable"
BUILD = ROOT / "build" / "mpy"
VENV_BIN = Path(sys.executable).parent
MICROPYTHON = str(VENV_BIN / "micropython")
MPY_CROSS = str(VENV_BIN / "mpy-cross")
ARCHS = ("xtensawin", "armv6m")
MP_TIMEOUT_S = 600

# Module search paths per runtime. tests/fakes comes first so its machine.py shadows the unix
# port's built-in one; .frozen stays in, or frozen modules vanish (MICROPYPATH replaces sys.path).
_SRC_PATH = ["tests/fakes", "lib", "boards", "firmware", "tests/portable", ".frozen"]


def runtime_path(runtime):
    """The MICROPYPATH entries (relative to the repo root) for one MicroPython runtime."""
    if runtime == "micropython-src":
        return list(_SRC_PATH)
    arch = runtime.split("-", 1)[1]
    return [
        "tests/fakes",
        "build/mpy/%s" % arch,
        "build/mpy/%s/boards" % arch,
        "firmware",
        "tests/portable",
        ".frozen",
    ]


def micropython_env(runtime="micropython-src", extra_path=()):
    """Environment for a `micropython` subprocess run from the repo root."""
    env = dict(os.environ)
    env["KPN_TEST_RUNTIME"] = runtime
    # .frozen is a name the port knows, not a folder: it must stay relative or frozen modules
    # (ssl among them) vanish.
    paths = list(extra_path) + runtime_path(runtime)
    env["MICROPYPATH"] = ":".join([p if p == ".frozen" else str(ROOT / p) for p in paths])
    return env


MP_RUNTIMES = ("micropython-src",) + tuple("mpy-" + a for a in ARCHS)


def build_mpy(arch):
    """Compile lib/ and boards/ with mpy-cross for `arch` into build/mpy/<arch>/ (incremental)."""
    out_root = BUILD / arch
    # Built as deploy builds them for a board (tools/kpnthings_tools/build.py): -O3, no line
    # numbers. A change of flags rebuilds everything.
    flags = "-O3"
    stamp = out_root / ".flags"
    if not stamp.exists() or stamp.read_text() != flags:
        for old in out_root.rglob("*.mpy"):
            old.unlink()
    sources = [(p, p.relative_to(ROOT / "lib")) for p in (ROOT / "lib").rglob("*.py")]
    sources += [(p, Path("boards") / p.name) for p in (ROOT / "boards").glob("*.py")]
    for src, rel in sources:
        dst = out_root / rel.with_suffix(".mpy")
        if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [MPY_CROSS, flags, "-march=" + arch, "-s", str(rel), "-o", str(dst), str(src)],
            check=True,
            capture_output=True,
        )
    out_root.mkdir(parents=True, exist_ok=True)
    stamp.write_text(flags)
    # A module deleted from lib/ must not live on as a stale .mpy.
    wanted = {(out_root / rel.with_suffix(".mpy")) for _, rel in sources}
    for mpy in out_root.rglob("*.mpy"):
        if mpy not in wanted:
            mpy.unlink()


def pytest_addoption(parser):
    parser.addoption(
        "--runtimes",
        default="cpython," + ",".join(MP_RUNTIMES),
        help="comma-separated runtimes for the portable tests (default: all four)",
    )


def _selected(config):
    return [r.strip() for r in config.getoption("--runtimes").split(",") if r.strip()]


def pytest_configure(config):
    config._mp_results = {}
    config._runtime_counts = {}


def pytest_collect_file(file_path, parent):
    if (
        file_path.parent == PORTABLE
        and file_path.name.startswith("test_")
        and file_path.suffix == ".py"
    ):
        return MicroPythonFile.from_parent(parent, path=file_path)
    return None


class MicroPythonFile(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text())
        names = sorted(
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
        )
        for runtime in _selected(self.config):
            if runtime not in MP_RUNTIMES:
                continue
            for name in names:
                yield MicroPythonItem.from_parent(
                    self, name="%s[%s]" % (name, runtime), test=name, runtime=runtime
                )


class MicroPythonTestFailure(Exception):
    pass


class MicroPythonItem(pytest.Item):
    def __init__(self, *, test, runtime, **kw):
        super().__init__(**kw)
        self.test = test
        self.runtime = runtime

    def _results(self):
        key = (self.runtime, self.path.stem)
        cache = self.config._mp_results
        if key not in cache:
            if self.runtime.startswith("mpy-"):
                build_mpy(self.runtime[4:])
            proc = subprocess.run(
                [MICROPYTHON, "tests/mp_run.py", self.path.stem],
                cwd=ROOT,
                env=micropython_env(self.runtime),
                capture_output=True,
                text=True,
                timeout=MP_TIMEOUT_S,
            )
            results, other = {}, []
            for line in proc.stdout.splitlines():
                try:
                    rec = json.loads(line)
                    results[rec["t"]] = rec
                except (ValueError, KeyError, TypeError):
                    other.append(line)
            cache[key] = (results, "\n".join(other[-40:]), proc.stderr[-4000:], proc.returncode)
        return cache[key]

    def runtest(self):
        results, stdout, stderr, rc = self._results()
        rec = results.get(self.test) or results.get("*")
        if rec is None:
            raise MicroPythonTestFailure(
                "no result from MicroPython (exit %s)\nstdout:\n%s\nstderr:\n%s"
                % (rc, stdout, stderr)
            )
        if rec["r"] == "skip":
            pytest.skip(rec["e"] or "skipped on " + self.runtime)
        if rec["r"] != "pass":
            raise MicroPythonTestFailure(rec["e"])

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonTestFailure):
            return "%s failed on %s:\n%s" % (self.test, self.runtime, excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.name


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector, name, obj):
    # Portable tests on CPython get the id suffix [cpython], so a failure names its runtime
    # exactly like the MicroPython ones do.
    if (
        isinstance(collector, pytest.Module)
        and collector.path.parent == PORTABLE
        and name.startswith("test_")
        and callable(obj)
    ):
        return [pytest.Function.from_parent(collector, name=name + "[cpython]", callobj=obj)]
    return None


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    # A portable test raises _support.Skip where MicroPython's runner reports a skip; CPython
    # must report it the same way, not as a failure. Each runs inside _support.KeptModules, as
    # tests/mp_run.py runs them, so a test that unloads modules leaves none reloaded behind.
    kept = None
    if pyfuncitem.path.parent == PORTABLE:
        from _support import KeptModules

        kept = KeptModules().__enter__()
    try:
        return (yield)
    except Exception as e:
        if type(e).__name__ == "Skip" and type(e).__module__ == "_support":
            pytest.skip(str(e) or "skipped on cpython")
        raise
    finally:
        if kept is not None:
            kept.__exit__(None, None, None)


def pytest_collection_modifyitems(config, items):
    keep = []
    cpython = "cpython" in _selected(config)
    for item in items:
        if isinstance(item, MicroPythonItem):
            keep.append(item)
        elif Path(str(item.path)).parent == PORTABLE:
            if cpython:
                keep.append(item)
        else:
            keep.append(item)
    items[:] = keep


def _runtime_of(report):
    nodeid = report.nodeid
    if "tests/portable/" in nodeid:
        return nodeid.rsplit("[", 1)[-1].rstrip("]")
    return "cpython (host tests)"


def pytest_runtest_logreport(report):
    counts = _COUNTS.setdefault(_runtime_of(report), {"passed": 0, "failed": 0, "skipped": 0})
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        counts[report.outcome] += 1
    elif report.when == "teardown" and report.outcome == "failed":
        counts["failed"] += 1


_COUNTS = {}


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS:
        return
    tr = terminalreporter
    tr.section("tests per runtime")
    order = ["cpython", *MP_RUNTIMES, "cpython (host tests)"]
    labels = {
        "cpython": "CPython %d.%d (portable tests)" % sys.version_info[:2],
        "micropython-src": "MicroPython unix port, .py sources",
        "mpy-xtensawin": "MicroPython unix port, .mpy xtensawin (ESP32)",
        "mpy-armv6m": "MicroPython unix port, .mpy armv6m (Pico W)",
        "cpython (host tests)": "CPython host tests (emulator, TLS, e2e, fuzz)",
    }
    tr.write_line("%-50s %7s %7s %7s" % ("runtime", "passed", "failed", "skipped"))
    for key in order + sorted(set(_COUNTS) - set(order)):
        if key in _COUNTS:
            c = _COUNTS[key]
            tr.write_line(
                "%-50s %7d %7d %7d" % (labels.get(key, key), c["passed"], c["failed"], c["skipped"])
            )


@pytest.fixture
def mp_env():
    """Factory for the environment of a MicroPython subprocess: mp_env(runtime, extra_path)."""
    return micropython_env


@pytest.fixture(scope="session")
def mpy_built():
    """Builds the .mpy trees once, for host tests that run the board files as .mpy."""
    for arch in ARCHS:
        build_mpy(arch)
    return {arch: BUILD / arch for arch in ARCHS}
