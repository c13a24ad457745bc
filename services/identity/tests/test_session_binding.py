"""The pure values that bind a consent to one browser and one completion."""

from gatehouse_identity.session_binding import cookie_header, cookie_name, digest, matches, new_secret


def test_secrets_are_long_random_and_stored_only_as_digests() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and len(a) >= 43
    assert digest(a) != a and matches(a, digest(a)) and not matches(b, digest(a))
    assert not matches(None, digest(a)) and not matches(a, None) and not matches("", digest(""))


def test_one_cookie_per_session_host_only_over_https() -> None:
    plain = cookie_header("http://127.0.0.1:8081", "urn:x:1", "v", 600)
    assert plain.startswith(cookie_name("http://127.0.0.1:8081", "urn:x:1") + "=v;")
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Path=/" in plain and "Secure" not in plain
    assert cookie_name("http://h", "urn:x:1") != cookie_name("http://h", "urn:x:2")
    secure = cookie_header("https://id.example", "urn:x:1", "v", 600)
    assert secure.startswith("__Host-gatehouse_consent_") and "; Secure" in secure and "Domain" not in secure
    assert "Max-Age=0" in cookie_header("https://id.example", "urn:x:1", "", -5)
