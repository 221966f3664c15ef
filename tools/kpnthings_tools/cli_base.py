"""What every `kpnthings` verb shares: CommandError (a user error, one line on stderr, exit 2)
and the device config read as one."""

import sys

from . import provision


class CommandError(Exception):
    """A user error: printed as one line on stderr, exit status 2."""


def print_error(text):
    sys.stderr.write("kpnthings: %s\n" % text)
    sys.stderr.flush()


def load_config(path):
    """A device config (provision.load_config), or CommandError saying why not."""
    try:
        return provision.load_config(path)
    except OSError as e:
        raise CommandError("cannot read %s: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise CommandError(str(e)) from None
