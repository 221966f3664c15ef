"""Device identity and the Things-Message-Token that signs every uplink.

KPN Things authenticates a message by SHA-256 over the exact body bytes followed by the device's
shared secret, as lowercase hex (no HMAC, no separator). The helpers here validate the identity
values once, at boot, with messages that say what is wrong but never echo the secret.
"""

import binascii
import hashlib

_HEXB = b"0123456789abcdefABCDEF"
_UUID_GROUPS = (8, 4, 4, 4, 12)
_HEX = hasattr(b"", "hex")
try:
    hashlib.sha256("")  # MicroPython hashes a str as its UTF-8 bytes; CPython refuses one
    _HASH_STR = True
except TypeError:
    _HASH_STR = False


def message_token(body, secret):
    """Return the 64-character lowercase hex token for `body` (bytes or str) and `secret`."""
    # Every uplink pays for this: on MicroPython a str goes into the hash as its UTF-8 bytes
    # directly, and bytes.hex() makes the text in one step (no encode, hexlify, decode copies).
    if not _HASH_STR:
        if isinstance(body, str):
            body = body.encode()
        if isinstance(secret, str):
            secret = secret.encode()
    h = hashlib.sha256(body)
    h.update(secret)
    d = h.digest()
    # MicroPython's hashlib has no hexdigest(); a build without bytes.hex() gets hexlify.
    return d.hex() if _HEX else binascii.hexlify(d).decode()


def _is_alnum(c):
    # c: a byte. The checks below walk the UTF-8 bytes, not the characters: on MicroPython each
    # character taken from a str would be interned for good, leaving the secret's character set
    # in the heap. Before the first byte that fails, every byte is ASCII, so its index is the
    # character's.
    return 48 <= c <= 57 or 97 <= c <= 122 or 65 <= c <= 90


def check_secret(secret):
    """Return `secret` if it meets KPN's rule ^[0-9a-zA-Z]{30,100}$, else raise ValueError."""
    if not isinstance(secret, str):
        raise ValueError("secret must be a string of 30-100 letters or digits")
    n = len(secret)
    if n < 30 or n > 100:
        raise ValueError("secret must be 30-100 letters or digits, got %d characters" % n)
    for i, c in enumerate(secret.encode()):
        if not _is_alnum(c):
            # Say where, never what: the secret must not leak into logs.
            raise ValueError(
                "secret may hold only letters and digits (character %d is not)" % (i + 1)
            )
    return secret


def check_dvnuuid(value):
    """Return the canonical UUID `value` in lowercase; raise ValueError if it is not one."""
    if not isinstance(value, str) or len(value) != 36:
        raise ValueError("dvnuuid must be a UUID like 5e3a0f7c-1b2d-4c6e-9f80-1234567890ab")
    raw = value.encode()
    if len(raw) != 36:
        raise ValueError("dvnuuid must hold hex digits in groups 8-4-4-4-12")
    pos = 0
    for size in _UUID_GROUPS:
        for c in raw[pos : pos + size]:
            if c not in _HEXB:
                raise ValueError("dvnuuid must hold hex digits in groups 8-4-4-4-12")
        pos += size
        if pos < 36:
            if raw[pos] != 45:  # "-"
                raise ValueError("dvnuuid must hold hex digits in groups 8-4-4-4-12")
            pos += 1
    return value.lower()


def base_name(dvnuuid):
    """The SenML base name KPN expects: record names are appended after the final colon."""
    return "urn:dev:DVNUUID:" + check_dvnuuid(dvnuuid) + ":"
