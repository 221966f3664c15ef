"""`kpnthings keygen` and `kpnthings release build|sign|verify`: signed updates on the host
(kpnthings_tools.release, docs/updates.md). The private key is read here and never written
anywhere else; the board gets the public key only."""

import json
import os
from pathlib import Path

from .cli_base import CommandError


def add_parsers(sub):
    k = sub.add_parser(
        "keygen",
        help="make the update signing key pair (EC P-256)",
        description="Write a new private key (PEM, owner-only; keep it off the boards) and its "
        "public key (65 raw bytes, the file config's update.key names on the board).",
    )
    k.add_argument("--out", default="update", help="file stem: STEM.key and STEM_key.pub")
    k.add_argument("--force", action="store_true", help="replace existing key files")
    k.set_defaults(run=_cmd_keygen)

    r = sub.add_parser("release", help="build, sign or check a signed update release")
    rsub = r.add_subparsers(dest="release_command", metavar="STEP")
    rsub.required = True
    b = rsub.add_parser("build", help="compile the config's module set into OUT/VERSION")
    b.add_argument("--board", required=True)
    b.add_argument("--config", required=True, help="the device config the release is for")
    b.add_argument("--version", required=True, dest="release_version", help="MAJOR.MINOR.PATCH")
    b.add_argument("--out", default="releases", help="releases folder (default releases)")
    b.set_defaults(run=_cmd_build)
    s = rsub.add_parser("sign", help="sign FOLDER/manifest.json into FOLDER/manifest.sig")
    s.add_argument("folder")
    s.add_argument("--key", required=True, help="the private key (PEM) from kpnthings keygen")
    s.add_argument("--public", help="check the signature with this public key too")
    s.set_defaults(run=_cmd_sign)
    v = rsub.add_parser("verify", help="check a release's signature and every file, as a board")
    v.add_argument("folder")
    v.add_argument("--public", required=True, help="the public key a board holds")
    v.set_defaults(run=_cmd_verify)

    from .emulator_client import DEFAULT_URL

    u = sub.add_parser(
        "update",
        help="the emulator's update host: each device's version, and offers of a release",
        description="Without --offer: every device with the version it runs and the one offered."
        " With --offer VERSION: offer that signed release (mock-server --releases) to the "
        "devices named, or to all; --withdraw takes the offer back.",
    )
    u.add_argument("devices", nargs="*", help="DvnUUIDs, device names or configs (none: all)")
    u.add_argument("--offer", metavar="VERSION", help="offer this release")
    u.add_argument("--withdraw", action="store_true", help="withdraw the offer")
    u.add_argument("--url", default=DEFAULT_URL, help="the emulator (default %s)" % DEFAULT_URL)
    u.add_argument("--api-token", default=os.environ.get("KPNTHINGS_API_TOKEN"))
    u.set_defaults(run=_cmd_update)


def _cmd_keygen(args):
    from . import release_keys

    private = Path(args.out + ".key")
    public = Path(args.out + "_key.pub")
    try:
        release_keys.keygen(private, public, force=args.force)
    except release_keys.ReleaseKeyError as e:
        raise CommandError(str(e)) from None
    print("private key: %s (owner-only: keep it on this host, never on a board)" % private)
    print("public key:  %s (65 bytes: name it in config.json's update.key)" % public)
    return 0


def _cmd_build(args):
    from . import release

    try:
        folder = release.build_release(args.config, args.board, args.release_version, args.out)
        doc, raw = release.check_files(folder)
    except release.ReleaseError as e:
        raise CommandError(str(e)) from None
    total = sum(size for _p, size, _h in doc["files"])
    print(
        "release %s for %s: %d files, %d bytes"
        % (doc["version"], args.board, len(doc["files"]), total)
    )
    print(
        "manifest: %s (%d bytes); sign it: kpnthings release sign %s --key KEY"
        % (folder / release.MANIFEST, len(raw), folder)
    )
    return 0


def _cmd_sign(args):
    from . import release

    try:
        doc = release.sign_release(args.folder, args.key, args.public)
    except release.ReleaseError as e:
        raise CommandError(str(e)) from None
    print(
        "signed %s (version %s): %s"
        % (args.folder, doc["version"], Path(args.folder) / release.SIGNATURE)
    )
    return 0


def _cmd_verify(args):
    from . import release

    try:
        doc = release.verify_release(args.folder, args.public)
    except release.ReleaseError as e:
        raise CommandError(str(e)) from None
    print("ok: version %s, %d files, signature good" % (doc["version"], len(doc["files"])))
    return 0


def _cmd_update(args):
    from . import emulator_client as ec

    ec._TOKEN[0] = args.api_token
    if args.offer and args.withdraw:
        raise CommandError("give --offer VERSION or --withdraw, not both")
    if args.offer or args.withdraw:
        devices = [ec.resolve_device(args.url, d)[0] for d in args.devices] or "all"
        body = json.dumps({"version": args.offer, "devices": devices}).encode()
        state = ec._request(args.url, "/api/updates", body)
        what = "offered %s" % args.offer if args.offer else "withdrew the offer"
        print("%s to %s" % (what, "all devices" if devices == "all" else ", ".join(devices)))
        return 0
    state = ec._request(args.url, "/api/updates")
    print("releases: %s" % (", ".join(state["releases"]) or "none"))
    for dev in ec._request(args.url, "/api/devices"):
        print(
            "%s  %-20s runs %s, offered %s"
            % (
                dev["dvnuuid"],
                dev.get("name") or "-",
                dev.get("version") or "unknown",
                dev.get("update_offered") or "nothing",
            )
        )
    return 0
