"""kpnthings: connect MicroPython boards to KPN Things (SenML over HTTPS, signed by token).

Kept empty on purpose: every module is imported on demand, so a board only pays for what it uses.
"""

__version__ = "0.1.0"
