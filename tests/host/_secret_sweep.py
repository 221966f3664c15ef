"""The watched values of the secret hygiene tests (test_secret_hygiene*.py) and the search for
them: a distinctive device secret, a second device's, a Wi-Fi password and an MQTT password, each
found whole or by either half, so a truncated echo is caught too."""

UUID = "9d2f6a1e-3b4c-4d5e-8f60-718293a4b5c6"
SECRET = "SeCrEtZq9Xw7Vb5Nm3Lk1Jh8Gf6Ds4Ap2Oi0Uy"
OTHER_SECRET = "OtHeRsEcReT4Kp8Wq2Zx6Cv0Bn3Ml7Jh5Gf1Ds"
WIFI_PW = "WiFiPw-zebra-4471-quokka"
MQTT_PW = "MqttPw-narwhal-8823-axolotl"
WATCHED = (SECRET, OTHER_SECRET, WIFI_PW, MQTT_PW)


def leaks(text, extra=()):
    """Every watched value (or half of one) and every extra value found in text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = [x for x in extra if x in text]
    for s in WATCHED:
        half = len(s) // 2
        for piece in (s, s[:half], s[half:]):
            if piece in text:
                found.append(piece)
    return found


def assert_clean(label, *texts, extra=()):
    for text in texts:
        bad = leaks(text, extra)
        assert not bad, "%s leaks %r in:\n%s" % (label, bad, text)
