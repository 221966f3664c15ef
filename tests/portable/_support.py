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


def is_micropython():
    import sys

    return sys.implementation.name == "micropython"
