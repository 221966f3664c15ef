"""Runs first after every reset. Kept to nothing slow: main.py does the work, and a board whose
config is broken must still reach the REPL at once so it can be fixed."""

import gc

gc.collect()
