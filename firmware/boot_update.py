"""Runs first after every reset, on a board whose config has "update" (kpnthings deploy copies
this file as boot.py then; any other config gets firmware/boot.py, which holds none of this).
It picks the version folder to boot before anything else of kpnthings loads (docs/updates.md):
kpnthings.update_boot counts a trial boot, rolls a spent trial back, and puts the chosen folder
first on sys.path. Kept to nothing slow, so a broken config still reaches the REPL at once."""

import gc

try:
    from kpnthings import update_boot

    update_boot.run()
    del update_boot
except ImportError:  # the update code is not on this board: boot the base
    pass
gc.collect()
