"""Test PKI for the HTTPS figures: a root CA, an intermediate and a server certificate for
127.0.0.1, made by trustme, in two flavours: EC P-256 and RSA-2048 (what public CAs issue).

The server sends its certificate and the intermediate; the device trusts only the root, given
to it as DER (config.json's ca_file), as a board gets KPN's CA. A second, unrelated root is made
too, for the check that a wrong CA is refused.
"""

import ssl
from collections import namedtuple
from pathlib import Path

# ca_der: the root as DER (for the device); cert: server key + chain PEM; key: server key PEM;
# other_ca_der: an unrelated root (DER) that must not verify the server
Chain = namedtuple("Chain", "name ca_der cert key other_ca_der")

KEY_TYPES = ("ec", "rsa")


def _key_type(name):
    import trustme

    return {"ec": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}[name]


def _der(ca):
    return ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())


def make_chain(name, folder):
    """Write the chain's files into `folder`; returns a Chain of their paths."""
    import trustme

    kt = _key_type(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    root = trustme.CA(key_type=kt)
    intermediate = root.create_child_ca(key_type=kt)
    leaf = intermediate.issue_cert("127.0.0.1", "localhost", key_type=kt)
    chain = Chain(
        name,
        folder / ("%s-ca.der" % name),
        folder / ("%s-server.pem" % name),
        folder / ("%s-server.key" % name),
        folder / ("%s-other-ca.der" % name),
    )
    chain.ca_der.write_bytes(_der(root))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(chain.cert))
    leaf.private_key_pem.write_to_path(str(chain.key))
    chain.other_ca_der.write_bytes(_der(trustme.CA(key_type=kt)))
    return chain


def make_chains(folder):
    """{"ec": Chain, "rsa": Chain} under `folder`."""
    return {name: make_chain(name, Path(folder) / name) for name in KEY_TYPES}
