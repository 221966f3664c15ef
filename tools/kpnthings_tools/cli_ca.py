"""`kpnthings ca`: a server's root CA as DER, or whether given DER files verify it."""

import os

from .cli_base import CommandError, print_error


def add_ca(sub):
    from .ca import DEFAULT_TIMEOUT_S

    p = sub.add_parser(
        "ca",
        help="fetch a server's root CA as DER for the board, or check DER files against it",
        description="Fetch the root CA that anchors HOST's certificate chain, from the trust "
        "store, and write it as DER; or, with --check, verify HOST against DER files only, "
        "as the board does with ca_file and ca_files.",
    )
    p.add_argument("host", metavar="HOST[:PORT]", help="the server (port 443 unless given)")
    p.add_argument(
        "--check",
        action="append",
        metavar="FILE",
        help="verify HOST against this DER file (repeat: loaded together, as ca_files)",
    )
    p.add_argument("--out", default="ca.der", help="where the root goes (default ca.der)")
    p.add_argument("--force", action="store_true", help="replace a different --out file")
    p.add_argument(
        "--trust-store",
        metavar="FILE",
        help="trust only these certificates (PEM or DER) instead of the system's store",
    )
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds")
    p.set_defaults(run=_cmd_ca)


def _cmd_ca(args):
    from . import ca

    try:
        host, port = ca.parse_target(args.host)
        if args.check:
            if args.trust_store or args.out != "ca.der" or args.force:
                raise CommandError("--check takes no --out, --force or --trust-store")
            return _ca_check(ca, args.check, host, port, args.timeout)
        root = ca.fetch_root(host, port, args.trust_store, args.timeout)
        changed = ca.save_der(args.out, root.der, args.force)
    except ca.CAError as e:
        raise CommandError(str(e)) from None
    store = args.trust_store or "the system's trust store"
    print("host:     %s:%d (sent %d certificates)" % (host, port, root.sent))
    print("root:     %s" % ca.name_text(root.info["subject"]))
    print("expires:  %s" % ca.expiry_text(root.info))
    print("sha256:   %s" % ca.fingerprint(root.der))
    if root.trusted:
        print("trusted:  yes: it is in %s and anchors the verified chain" % store)
    else:
        print("trusted:  NO: the server sent this self-signed root, and %s lacks it" % store)
        print_error(
            "warning: %s is NOT verified: compare its sha256 above with the one the server's "
            "operator publishes before a board trusts it" % args.out
        )
    said = "wrote:   " if changed else "same:    "
    print("%s %s (DER, %d bytes)" % (said, args.out, len(root.der)))
    name = os.path.basename(args.out)
    print(
        'config:   %s beside config.json as "ca_file": "%s", or in "ca_files" next to the'
        " current root before a change of root (docs/tls.md)" % (name, name)
    )
    return 0


def _ca_check(ca, files, host, port, timeout):
    result = ca.check(files, host, port, timeout)
    for info in result.cas.values():
        print("trusts:   %s, expires %s" % (ca.name_text(info["subject"]), ca.expiry_text(info)))
    if result.ok:
        info = result.cas.get(result.anchor)
        name = ca.name_text(info["subject"]) if info else "a certificate"
        print("ok:       %s:%d verifies against %s from %s" % (host, port, name, result.file_of))
        return 0
    print(
        "FAILED:   %s:%d does not verify against %s: %s"
        % (host, port, ", ".join(str(f) for f in files), result.error)
    )
    if result.chain_end is not None:
        print(
            "server:   its chain ends at a certificate issued by %s"
            % ca.name_text(result.chain_end["issuer"])
        )
    return 1
