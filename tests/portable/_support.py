"""Helpers shared by the portable tests; they run under CPython and MicroPython alike."""

import json

try:
    _HERE = __file__.rsplit("/", 1)[0]
except NameError:  # frozen or .mpy without __file__
    _HERE = "tests/portable"


class Skip(Exception):
    """Raise from a portable test that cannot run on this runtime; the reason is reported."""


def data_path(name):
    return _HERE + "/../data/" + name


def load_json(name):
    with open(data_path(name)) as f:
        return json.load(f)


def raises(exc_class, fn, *args, **kwargs):
    """Call fn and return the exception it raised; fail if it raised nothing or another type."""
    try:
        fn(*args, **kwargs)
    except exc_class as e:
        return e
    raise AssertionError("expected %s from %r" % (exc_class.__name__, fn))


def message(exc):
    """The text an exception was raised with, or "" (MicroPython's str(exc) differs for some)."""
    return str(exc.args[0]) if exc.args else ""


def is_micropython():
    import sys

    return sys.implementation.name == "micropython"


class KeptModules:
    """`with KeptModules():` puts the kpnthings modules back as they were when the block ends.
    A test that unloads modules, as the device does at rest, must not leave the tests after it
    with second copies of their classes: CPython runs every test in one process, and an
    `except senml.SenMLError` in a later test would not catch the reloaded module's error."""

    def __enter__(self):
        import sys

        self.modules = {k: v for k, v in sys.modules.items() if k.startswith("kpnthings")}
        # an import binds each submodule in its package too: remember those bindings
        self.bound = {}
        for name in self.modules:
            parent, _, short = _split(name)
            if parent in self.modules and short in self.modules[parent].__dict__:
                self.bound[name] = self.modules[parent].__dict__[short]
        return self

    def __exit__(self, *exc):
        import sys

        for name in [k for k in sys.modules if k.startswith("kpnthings")]:
            if name not in self.modules:
                sys.modules.pop(name)
        for name, module in self.modules.items():
            sys.modules[name] = module
            parent, _, short = _split(name)
            package = self.modules.get(parent)
            if package is None:
                continue
            if name in self.bound:
                setattr(package, short, self.bound[name])
            elif short in package.__dict__:
                delattr(package, short)
        # submodules first imported inside the block: unbind them from their packages too
        for package in self.modules.values():
            for short in [k for k, v in package.__dict__.items() if _is_new(v, self.modules)]:
                delattr(package, short)
        return False


def _split(name):
    parts = name.rsplit(".", 1)
    return (parts[0], ".", parts[1]) if len(parts) == 2 else ("", "", name)


def _is_new(value, modules):
    name = getattr(value, "__name__", None)
    return (
        type(value) is type(json)
        and isinstance(name, str)
        and name.startswith("kpnthings")
        and name not in modules
    )


def listening_socket():
    """(socket, port): a socket listening on 127.0.0.1, where the kernel completes a connect
    even without accept. The port is picked here: MicroPython's sockets have no getsockname."""
    import socket

    from kpnthings.compat import ticks_ms

    base = 20000 + ticks_ms() % 20000
    for port in range(base, base + 200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
            s.listen(2)
            return s, port
        except OSError:
            s.close()
    raise AssertionError("no free port from %d" % base)


class _Accepted:
    status = 200
    outcome = "accepted"
    downlink = []
    error = None


class AcceptingKpn:
    """A transport that accepts every pack and keeps each, decoded, in `packs` (and as sent,
    in `bodies`)."""

    def __init__(self):
        self.packs = []
        self.bodies = []

    def send(self, body):
        self.bodies.append(bytes(body))
        self.packs.append(json.loads(self.bodies[-1]))
        return _Accepted()
