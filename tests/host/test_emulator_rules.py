"""The emulator's response rules, in order: 400 for a malformed message before anything else, 404
for an unknown device before the token, 401 for a token that does not match, else 200."""

import pytest
from _emulator_support import (
    OTHER_SECRET,
    OTHER_UUID,
    SECRET,
    STRANGER,
    UUID,
    VECTOR,
    last_message,
    pack,
)

from kpnthings import auth

# -- rule 0: accepted ------------------------------------------------------------------------


def test_known_token_vector_is_accepted_with_empty_body(api):
    body = VECTOR["body"].encode()
    status, data = api.uplink(body, token=VECTOR["token"])
    assert (status, data) == (200, b"")
    msg = last_message(api, UUID)
    assert msg["status"] == 200 and msg["outcome"] == "accepted"
    assert msg["token_check"] == "ok"
    assert msg["body"] == VECTOR["body"]
    assert msg["received_at"].endswith("Z") and msg["received_at"][:2] == "20"
    names = [r["n"] for r in msg["records"]]
    assert names == ["urn:dev:DVNUUID:%s:temperature" % UUID]
    assert msg["records"][0]["v"] == 21.5


def test_repeated_base_name_of_the_same_device_is_accepted(api):
    again = '{"bn":"urn:dev:DVNUUID:%s:","n":"humidity","u":"%%RH","v":40}' % UUID.upper()
    assert api.uplink(pack(records=again))[0] == 200
    assert last_message(api, UUID)["records"][0]["u"] == "%RH"


# -- rule 1: 400 before anything else --------------------------------------------------------


@pytest.mark.parametrize(
    "body, why",
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe[]", "not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),
        (b"{}", "non-empty SenML pack"),
        (b"[]", "non-empty SenML pack"),
        (b'[{"n":"temperature","v":1}]', "base name"),
        (('[{"bn":"urn:dev:DVNUUID:%s","n":"t","v":1}]' % UUID).encode(), "trailing colon"),
        (b'[{"bn":"urn:dev:DVNUUID:not-a-uuid:","n":"t","v":1}]', "valid UUID"),
        (('[{"bn":"urn:dev:IMEI:%s:","n":"t","v":1}]' % UUID).encode(), "urn:dev:DVNUUID"),
        (pack(records='{"n":"t","v":"text"}'), "not a valid SenML pack"),
        (pack(records='{"n":"t","v":1,"x_":2}'), "not a valid SenML pack"),
        (
            pack(records='{"bn":"urn:dev:DVNUUID:%s:","n":"t","v":1}' % OTHER_UUID),
            "same device",
        ),
    ],
)
def test_malformed_body_is_400_with_reason(api, body, why):
    # A valid token for a registered device does not rescue a malformed body.
    status, data = api.uplink(body)
    assert status == 400
    assert why in data.decode("utf-8")
    msg = last_message(api)
    assert (msg["status"], msg["outcome"], msg["records"]) == (400, "malformed", None)
    assert msg["token_check"] == "not checked"


def test_malformed_body_from_unknown_device_with_bad_token_is_400(api):
    status, _ = api.uplink(pack(STRANGER, '{"n":"t","v":"x"}'), token="0" * 64)
    assert status == 400


def test_malformed_message_is_filed_under_its_device(api):
    api.uplink(pack(records='{"n":"t","v":"text"}'))
    msg = last_message(api, UUID)
    assert msg["dvnuuid"] == UUID and msg["outcome"] == "malformed"
    info = api.get("/api/devices/%s" % UUID)
    assert info["last_outcome"] == "malformed" and info["last_status"] == 400


def test_wrong_content_type_is_400(api):
    status, data = api.uplink(pack(), content_type="text/plain")
    assert status == 400 and b"application/json" in data


# -- rule 2: 404 before the token ------------------------------------------------------------


def test_unknown_device_is_404_even_with_bad_token(api):
    status, data = api.uplink(pack(STRANGER), token="0" * 64)
    assert status == 404 and STRANGER.encode() in data
    msg = last_message(api)
    assert (msg["dvnuuid"], msg["outcome"], msg["token_check"]) == (
        STRANGER,
        "unknown device",
        "not checked",
    )
    # Not a registered device: no listing of its own, but visible in the global log.
    resp, _ = api.request("GET", "/api/devices/%s/messages" % STRANGER)
    assert resp.status == 404


def test_uppercase_uuid_in_base_name_is_the_same_device(api):
    body = pack(UUID.upper())
    assert api.uplink(body)[0] == 200
    assert last_message(api, UUID)["dvnuuid"] == UUID


# -- rule 3: 401 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token, check",
    [
        ("0" * 64, "mismatch"),
        ("short", "mismatch"),
        ("\u00e9" * 64, "mismatch"),
        (False, "missing"),
    ],
)
def test_bad_or_missing_token_is_401(api, token, check):
    if token == "\u00e9" * 64:
        token = token.encode("utf-8").decode("latin-1")  # what arrives over the wire
    status, _ = api.uplink(pack(), token=token)
    assert status == 401
    info = api.get("/api/devices/%s" % UUID)
    assert (info["last_outcome"], info["last_token_check"]) == ("unauthorized", check)


def test_token_of_another_device_is_401(api):
    assert api.uplink(pack(), secret=OTHER_SECRET)[0] == 401


def test_token_over_other_bytes_is_401(api):
    body = pack()
    token = auth.message_token(body.replace(b"21.5", b"21.6"), SECRET)
    assert api.uplink(body, token=token)[0] == 401


def test_token_uppercase_hex_is_refused(api):
    # KPN specifies lowercase hex; the emulator is strict so the firmware is.
    body = pack()
    assert api.uplink(body, token=auth.message_token(body, SECRET).upper())[0] == 401
