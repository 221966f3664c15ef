"""Firmware entry point. The firmware itself is kpnthings.app (shipped as .mpy): this file is
compiled on the board at every boot, which costs heap, so it stays two lines."""

from kpnthings import app

app.main()
