"""kpnthings: connect MicroPython boards to KPN Things (SenML over HTTPS, signed by token).

Kept small on purpose: every module is imported on demand, so a board only pays for what it uses,
and what is needed rarely (config checks at boot, the downlink parser) is dropped again with
`unload` once used.
"""

__version__ = "0.1.0"


def unload(*names):
    """Forget kpnthings.<name> modules and collect their bytecode (several KB each on a board,
    where a .mpy is loaded into the heap); the next import loads them again. Collecting at once
    matters: the next allocations then fill the holes they leave, instead of fresh heap above
    them, which on the 32-bit port cost 7 KB more heap for a full cycle."""
    import gc
    import sys

    package = sys.modules[__name__]
    for name in names:
        sys.modules.pop(__name__ + "." + name, None)
        if name in package.__dict__:  # importing a submodule also binds it in its package
            delattr(package, name)
    if sys.implementation.name == "micropython":  # CPython frees by reference counting already
        gc.collect()
