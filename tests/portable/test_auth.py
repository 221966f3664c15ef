"""auth: token vectors, secret and DvnUUID rules."""

from _support import load_json, raises
from kpnthings import auth

GOOD_SECRET = "72J3wD2bd49jnMI8S31j2L3vZldH3rSS"
UUID = "5e3a0f7c-1b2d-4c6e-9f80-1234567890ab"


def test_token_vectors():
    vectors = load_json("token.json")["vectors"]
    assert len(vectors) >= 4
    for v in vectors:
        assert auth.message_token(v["body"], v["secret"]) == v["token"]
        assert auth.message_token(v["body"].encode(), v["secret"]) == v["token"]


def test_token_is_64_lowercase_hex():
    t = auth.message_token(b"[]", GOOD_SECRET)
    assert len(t) == 64
    for ch in t:
        assert ch in "0123456789abcdef"


def test_token_covers_every_body_byte():
    # KPN's C library hashed a body one byte short; any change of body must change the token.
    body = b'[{"bn":"x:","bu":"Cel"},{"n":"t","v":1}]'
    assert auth.message_token(body, GOOD_SECRET) != auth.message_token(body[:-1], GOOD_SECRET)


def test_token_is_body_then_secret_not_reversed():
    a = auth.message_token(b"ab", "cd")
    assert a == auth.message_token(b"abc", "d")  # plain concatenation, no separator
    assert a != auth.message_token(b"cd", "ab")


def test_check_secret_accepts_kpn_rule_bounds():
    assert auth.check_secret(GOOD_SECRET) == GOOD_SECRET
    assert auth.check_secret("a" * 30) == "a" * 30
    assert auth.check_secret("Z9" * 50) == "Z9" * 50


def test_check_secret_rejects_length_without_echo():
    short = "abcdefghij0123"
    e = raises(ValueError, auth.check_secret, short)
    assert "14 characters" in str(e)
    assert short not in str(e)
    e = raises(ValueError, auth.check_secret, "b" * 101)
    assert "101" in str(e)
    assert "b" * 30 not in str(e)


def test_check_secret_rejects_symbols_without_echo():
    bad = "abcdefghij0123456789ABCDEFGHI!"
    e = raises(ValueError, auth.check_secret, bad)
    assert "character 30" in str(e)
    assert bad not in str(e)
    raises(ValueError, auth.check_secret, "abcdefghij0123456789ABCDEFGHIé")
    raises(ValueError, auth.check_secret, "abcdefghij 0123456789ABCDEFGHIJ")
    raises(ValueError, auth.check_secret, None)
    raises(ValueError, auth.check_secret, b"a" * 40)


def test_check_dvnuuid_lowercases():
    assert auth.check_dvnuuid(UUID.upper()) == UUID
    assert auth.check_dvnuuid(UUID) == UUID


def test_check_dvnuuid_rejects():
    for bad in (
        "",
        UUID[:-1],
        UUID + "0",
        UUID.replace("-", ""),
        "5e3a0f7c_1b2d-4c6e-9f80-1234567890ab",
        "5e3a0f7c-1b2d-4c6e-9f80-1234567890ag",
        "{5e3a0f7c-1b2d-4c6e-9f80-1234567890a}",
        None,
        12,
    ):
        raises(ValueError, auth.check_dvnuuid, bad)


def test_base_name():
    assert auth.base_name(UUID.upper()) == "urn:dev:DVNUUID:" + UUID + ":"
    raises(ValueError, auth.base_name, "nope")
