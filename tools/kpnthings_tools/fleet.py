"""Fleet provisioning: N device configs plus one CSV for the KPN Things Portal's bulk registration.

    kpnthings new-device --count 25 --out fleet/ --board esp32 --wifi-ssid Site \\
        --wifi-password ... --name field-sensor

writes fleet/field-sensor-01.json ... fleet/field-sensor-25.json (one config.json per board,
ready for `kpnthings deploy --config`) and fleet/kpnthings-devices.csv with one row per device.

CSV columns (docs/provisioning.md says why): `Name`, `DvnUUID`, `Shared Secret`. KPN's public
documentation names these three fields for an Internet device but does not publish the bulk
file's template, so the header uses the Portal's own field labels; rename the header row if the
Portal's template spells them differently. The CSV and every config hold secrets: all are written
with owner-only permissions, and nothing here prints a secret.
"""

import csv
import io
import os
import re

from . import provision

CSV_NAME = "kpnthings-devices.csv"
CSV_COLUMNS = ("Name", "DvnUUID", "Shared Secret")
MAX_COUNT = 10000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class FleetError(Exception):
    """A fleet request that cannot be carried out; the message says what to fix."""


def device_names(prefix, count):
    """prefix-01 .. prefix-NN, zero-padded so that the files sort in order."""
    width = max(2, len(str(count)))
    return ["%s-%0*d" % (prefix, width, i) for i in range(1, count + 1)]


def csv_text(rows):
    """The bulk CSV: header plus one row per (name, dvnuuid, secret), CRLF as RFC 4180 says."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def _write_private(path, text):
    """Create `path` with mode 0600 from the start, so a secret is never world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        f.write(text)
    os.chmod(path, 0o600)


def make_fleet(count, out_dir, config_for, prefix="device", force=False):
    """Create `count` identities, write their configs and the CSV into out_dir.

    `config_for(identity) -> dict` builds one config (the CLI passes new-device's options).
    Returns (csv_path, [(name, dvnuuid, config_path), ...]); secrets stay in the files.
    """
    if not isinstance(count, int) or count < 1 or count > MAX_COUNT:
        raise FleetError("--count must be between 1 and %d" % MAX_COUNT)
    if not _NAME_RE.match(prefix or ""):
        raise FleetError("device name prefix %r must be letters, digits, '.', '_' or '-'" % prefix)
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    names = device_names(prefix, count)
    csv_path = os.path.join(out_dir, CSV_NAME)
    paths = [os.path.join(out_dir, name + ".json") for name in names]
    if not force:
        # Check everything first: a half-written fleet next to an old one is worse than none.
        clash = [p for p in [csv_path, *paths] if os.path.exists(p)]
        if clash:
            raise FleetError(
                "%s already exists (and %d more); pass --force to replace, or "
                "choose another --out" % (clash[0], len(clash) - 1)
            )
    identities = []
    seen_ids, seen_secrets = set(), set()
    for name in names:
        ident = provision.new_identity(name)
        # uuid4 and 238-bit secrets do not collide in practice; checking costs nothing.
        while ident.dvnuuid in seen_ids or ident.secret in seen_secrets:
            ident = provision.new_identity(name)
        seen_ids.add(ident.dvnuuid)
        seen_secrets.add(ident.secret)
        identities.append(ident)
    written = []
    for ident, path in zip(identities, paths, strict=True):
        provision.write_config(path, config_for(ident), force=True)
        written.append((ident.name, ident.dvnuuid, path))
    _write_private(csv_path, csv_text((i.name, i.dvnuuid, i.secret) for i in identities))
    return csv_path, written


# -- CLI glue (registered on new-device by cli.py) ---------------------------------------------


def add_arguments(parser):
    """Add --count/--out to `kpnthings new-device`."""
    parser.add_argument(
        "--count", type=int, help="fleet mode: create N devices (needs --out); --name is the prefix"
    )
    parser.add_argument("--out", help="fleet mode: folder for the N configs and the Portal CSV")


def run(args, config_for):
    """new-device in fleet mode; prints names and ids only, never a secret."""
    if args.out is None:
        raise FleetError("--count needs --out DIR for the configs and the CSV")
    if getattr(args, "config_out", None):
        raise FleetError("--config-out writes one device; with --count use --out DIR")
    csv_path, written = make_fleet(
        args.count, args.out, config_for, prefix=args.name or "device", force=args.force
    )
    for name, dvnuuid, path in written:
        print("%s  %s  %s" % (name, dvnuuid, path))
    print(
        "%d configs written; Portal bulk CSV: %s (holds the secrets: keep it private)"
        % (len(written), csv_path)
    )
    return 0
