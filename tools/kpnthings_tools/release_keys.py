"""The update signing key on the host: make the pair, sign a manifest, check a signature.

ECDSA P-256 over SHA-256 (docs/updates.md says why). The private key is a PEM file that stays
on the host (written owner-only); the board gets only the public key, as the 65 raw bytes of an
uncompressed point (04 || x || y), the form kpnthings.update_verify reads. A signature travels
as 64 raw bytes, r || s, not DER: the board then needs no ASN.1 parser.
"""

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

PUBLIC_NAME = "update_key.pub"  # the file deployed beside config.json


class ReleaseKeyError(Exception):
    """A key file that is missing, not P-256, or would be overwritten."""


def new_private_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_bytes(private_or_public):
    key = getattr(private_or_public, "public_key", None)
    public = key() if key else private_or_public
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def keygen(private_path, public_path, force=False):
    """Write a new private key (PEM, mode 0600) and its public key (65 raw bytes)."""
    private_path, public_path = Path(private_path), Path(public_path)
    for p in (private_path, public_path):
        if p.exists() and not force:
            raise ReleaseKeyError("%s exists: not overwritten (--force replaces it)" % p)
    key = new_private_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(private_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(private_path, 0o600)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(public_bytes(key))
    return key


def load_private(path):
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ReleaseKeyError("private key %s: %s" % (path, e)) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ReleaseKeyError("private key %s is not an EC P-256 key" % path)
    return key


def sign(private_key, message):
    """64 bytes r || s: the ECDSA P-256 / SHA-256 signature of the exact bytes `message`."""
    r, s = decode_dss_signature(private_key.sign(bytes(message), ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(public_raw, message, signature):
    """True when `signature` (64 bytes r || s) is valid for `message` under `public_raw`."""
    if len(signature) != 64:
        return False
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(public_raw))
    except ValueError:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, bytes(message), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
