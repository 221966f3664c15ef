"""Runs first after every reset. Kept to nothing slow: main.py does the work, and a board whose
config is broken must still reach the REPL at once so it can be fixed."""

import gc

try:  # signed updates: the version folder to boot (deployed with config "update" only)
    from kpnthings import update_boot

    update_boot.run()
    del update_boot
except ImportError:
    pass
gc.collect()
