"""Auth: register, login (JSON and OAuth2 form), refresh rotation, logout, the admin account."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import Session, select

from backend.coordinator.auth import service
from backend.core.config import get_settings
from backend.core.security import hash_token
from backend.models import RefreshToken, Role, User
from tests.factories import PASSWORD, make_user, random_email


def _register(client, email=None, password=PASSWORD, role="client"):
    return client.post("/auth/register", json={"email": email or random_email(), "password": password,
                                               "role": role})


def _login(client, email, password=PASSWORD):
    return client.post("/auth/login", json={"email": email, "password": password})


def _refresh_status(client, refresh_token: str) -> int:
    return client.post("/auth/refresh", json={"refresh_token": refresh_token}).status_code


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- register ---------------------------------------------------------------------------------


def test_register_returns_201_with_public_fields(coordinator):
    r = _register(coordinator, email="Cliente@Example.COM", role="worker_owner")
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "email", "role", "created_at"}
    assert body["email"] == "cliente@example.com"  # stored lowercased
    assert body["role"] == "worker_owner"
    assert "password" not in r.text and "argon2" not in r.text


def test_duplicate_email_is_409_case_insensitive(coordinator):
    assert _register(coordinator, email="dup@example.com").status_code == 201
    r = _register(coordinator, email="  DUP@Example.com ", role="worker_owner")
    assert r.status_code == 409
    assert r.json()["detail"] == "Email already registered"


@pytest.mark.parametrize("role", ["admin", "superuser", "", None, "CLIENT"])
def test_register_refuses_admin_and_unknown_roles(coordinator, role):
    r = coordinator.post("/auth/register", json={"email": random_email(), "password": PASSWORD, "role": role})
    assert r.status_code == 422


def test_register_service_refuses_admin_role(session):
    from backend.core.errors import Unprocessable

    with pytest.raises(Unprocessable):
        service.register(session, email=random_email(), password=PASSWORD, role=Role.admin)


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "@example.com", "a@@example.com", "a b@example.com",
                                   "a@example..com", "x" * 310 + "@example.com", ""])
def test_register_refuses_invalid_email(coordinator, email):
    r = coordinator.post("/auth/register", json={"email": email, "password": PASSWORD, "role": "client"})
    assert r.status_code == 422


def test_register_refuses_short_password_naming_the_minimum(coordinator):
    r = _register(coordinator, password="short")
    assert r.status_code == 422
    assert "at least 8 characters" in r.text


def test_register_missing_fields_is_422(coordinator):
    assert coordinator.post("/auth/register", json={"email": random_email()}).status_code == 422


# --- login ------------------------------------------------------------------------------------


def test_full_auth_flow(coordinator):
    email = random_email()
    assert _register(coordinator, email=email).status_code == 201
    r = _login(coordinator, email.upper())  # email match is case-insensitive
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == get_settings().access_token_minutes * 60
    assert tokens["access_token"] and tokens["refresh_token"].startswith("omr_")

    me = coordinator.get("/me", headers=_bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["email"] == email

    r = coordinator.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert coordinator.get("/me", headers=_bearer(new["access_token"])).status_code == 200
    # The old refresh token stopped working.
    assert _refresh_status(coordinator, tokens["refresh_token"]) == 401

    r = coordinator.post("/auth/logout", json={"refresh_token": new["refresh_token"]})
    assert r.status_code == 204 and r.content == b""
    assert _refresh_status(coordinator, new["refresh_token"]) == 401


def test_refresh_token_is_stored_only_as_hash(coordinator, session):
    user = make_user(coordinator)
    rows = session.exec(select(RefreshToken).where(RefreshToken.user_id == user.id)).all()
    assert len(rows) == 1
    assert rows[0].token_hash == hash_token(user.refresh_token)
    assert user.refresh_token not in rows[0].token_hash


def test_bad_credentials_same_401_whether_or_not_email_exists(coordinator):
    email = random_email()
    _register(coordinator, email=email)
    wrong_pw = _login(coordinator, email, "Wrong-password-123")
    no_user = _login(coordinator, random_email(), "Wrong-password-123")
    assert wrong_pw.status_code == no_user.status_code == 401
    assert wrong_pw.json() == no_user.json() == {"detail": "Invalid email or password"}


def test_unknown_email_is_verified_against_dummy_hash(coordinator, monkeypatch):
    calls = []
    real = service.verify_password

    def spy(password, password_hash):
        calls.append(password_hash)
        return real(password, password_hash)

    monkeypatch.setattr(service, "verify_password", spy)
    assert _login(coordinator, random_email(), "Whatever-123").status_code == 401
    assert calls == [service.DUMMY_HASH]


def test_inactive_user_cannot_log_in(coordinator, session):
    user = make_user(coordinator)
    row = session.get(User, user.id)
    row.is_active = False
    session.add(row)
    session.commit()
    r = _login(coordinator, user.email)
    assert r.status_code == 401 and r.json()["detail"] == "Invalid email or password"
    assert coordinator.get("/me", headers=user.headers).status_code == 401
    assert _refresh_status(coordinator, user.refresh_token) == 401


def test_oauth2_password_form_login(coordinator):
    email = random_email()
    _register(coordinator, email=email)
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    r = coordinator.post("/auth/login", data=form)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert coordinator.get("/me", headers=_bearer(token)).status_code == 200
    bad = coordinator.post("/auth/login", data={"username": email, "password": "nope-nope-nope"})
    assert bad.status_code == 401
    missing = coordinator.post("/auth/login", data={"username": email})
    assert missing.status_code == 422


def test_login_openapi_documents_json_and_form(coordinator):
    spec = coordinator.get("/openapi.json").json()
    content = spec["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(content)
    schemes = spec["components"]["securitySchemes"]
    token_urls = [s.get("flows", {}).get("password", {}).get("tokenUrl") for s in schemes.values()]
    assert "/auth/login" in token_urls


def test_login_malformed_bodies(coordinator):
    assert coordinator.post("/auth/login", content=b"{not json",
                            headers={"content-type": "application/json"}).status_code == 400
    assert coordinator.post("/auth/login", json={"email": "x@example.com"}).status_code == 422
    assert coordinator.post("/auth/login", json=["x"]).status_code == 422
    assert coordinator.post("/auth/login", json={"email": 5, "password": 6}).status_code == 422


# --- C14: argon2 through passlib ----------------------------------------------------------------


def test_C14_argon2_register_login(coordinator, recwarn):
    from backend.core.security import hash_password, verify_password

    h = hash_password("mypassword-123")
    assert h.startswith("$argon2id$")
    assert verify_password("mypassword-123", h)
    assert not verify_password("mypassword-124", h)
    assert not verify_password("mypassword-123", "not-a-hash")

    email = random_email()
    assert _register(coordinator, email=email, password="mypassword-123").status_code == 201
    assert _login(coordinator, email, "mypassword-123").status_code == 200
    noisy = [w for w in recwarn.list if any(m in str(w.filename) for m in ("passlib", "argon2", "bcrypt"))]
    assert noisy == []


# --- C15: long and multibyte passwords ----------------------------------------------------------


def test_C15_72_byte_prefix_does_not_authenticate(coordinator):
    email = random_email()
    assert _register(coordinator, email=email, password="A" * 72 + "x").status_code == 201
    assert _login(coordinator, email, "A" * 72 + "y").status_code == 401
    assert _login(coordinator, email, "A" * 72).status_code == 401
    assert _login(coordinator, email, "A" * 72 + "x").status_code == 200


def test_C15_multibyte_password(coordinator):
    email = random_email()
    password = "あ" * 25  # 75 bytes in UTF-8
    assert _register(coordinator, email=email, password=password).status_code == 201
    assert _login(coordinator, email, password).status_code == 200
    assert _login(coordinator, email, "あ" * 24 + "い").status_code == 401


def test_C15_absurdly_long_password_is_422_naming_the_limit(coordinator):
    r = _register(coordinator, password="p" * 5000)
    assert r.status_code == 422
    assert "256" in r.text
    r = _login(coordinator, random_email(), "p" * 5000)
    assert r.status_code == 422
    assert "256" in r.text


def test_C15_password_at_the_limit_works(coordinator):
    email = random_email()
    assert _register(coordinator, email=email, password="é" * 256).status_code == 201
    assert _login(coordinator, email, "é" * 256).status_code == 200
    assert _register(coordinator, password="é" * 257).status_code == 422


# --- C16: JWT algorithm pinning and secret strength -----------------------------------------------


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user_id: int, **extra) -> dict:
    import time

    return {"sub": str(user_id), "role": "client", "type": "access", "exp": int(time.time()) + 600, **extra}


def test_C16_alg_none_token_is_401(coordinator):
    import json

    user = make_user(coordinator)
    for alg in ("none", "None", "NONE"):
        header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        payload = _b64(json.dumps(_claims(user.id)).encode())
        token = f"{header}.{payload}."
        assert coordinator.get("/me", headers=_bearer(token)).status_code == 401


def test_C16_hs512_with_the_real_secret_is_401(coordinator):
    import jwt

    user = make_user(coordinator)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT notes the secret is short for HS512: that is the point
        token = jwt.encode(_claims(user.id), get_settings().jwt_secret, algorithm="HS512")
    assert coordinator.get("/me", headers=_bearer(token)).status_code == 401
    # The same claims with the configured algorithm do authenticate (the test is meaningful).
    good = jwt.encode(_claims(user.id), get_settings().jwt_secret, algorithm="HS256")
    assert coordinator.get("/me", headers=_bearer(good)).status_code == 200


def test_C16_empty_key_and_wrong_key_tokens_are_401(coordinator):
    import hashlib
    import hmac
    import json

    import jwt

    user = make_user(coordinator)
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}." \
                    f"{_b64(json.dumps(_claims(user.id)).encode())}"
    sig = hmac.new(b"", signing_input.encode(), hashlib.sha256).digest()
    assert coordinator.get("/me", headers=_bearer(f"{signing_input}.{_b64(sig)}")).status_code == 401
    other = jwt.encode(_claims(user.id), "another-secret-" + "y" * 40, algorithm="HS256")
    assert coordinator.get("/me", headers=_bearer(other)).status_code == 401


def test_C16_tokens_without_type_or_expired_are_401(coordinator):
    import time

    import jwt

    user = make_user(coordinator)
    secret = get_settings().jwt_secret
    no_type = jwt.encode({"sub": str(user.id), "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    refresh_type = jwt.encode(_claims(user.id, type="refresh"), secret, algorithm="HS256")
    expired = jwt.encode(_claims(user.id, exp=int(time.time()) - 10), secret, algorithm="HS256")
    bad_sub = jwt.encode(_claims(user.id, sub="abc"), secret, algorithm="HS256")
    for token in (no_type, refresh_type, expired, bad_sub, "garbage", ""):
        assert coordinator.get("/me", headers=_bearer(token)).status_code == 401


def test_C16_settings_refuse_a_short_jwt_secret():
    from pydantic import ValidationError

    from backend.core.config import Settings

    for env in ("development", "test", "production"):
        with pytest.raises(ValidationError, match="JWT_SECRET must be at least 32 bytes"):
            Settings(environment=env, jwt_secret="short", coordinator_internal_token="t" * 40,
                     admin_password="a-real-admin-password-1")
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(jwt_secret="x" * 31)
    assert Settings(jwt_secret="x" * 32).jwt_secret == "x" * 32


def test_C16_unset_jwt_secret_uses_a_generated_strong_key_file(tmp_path, monkeypatch):
    """SPEC: JWT_SECRET, or a key file generated on first start (never an empty or weak key)."""
    from backend.core import config

    monkeypatch.setattr(config, "DATA_DIR", tmp_path / ".openmesh")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    first = config.Settings(jwt_secret="")
    assert len(first.jwt_secret.encode()) >= 32
    assert (tmp_path / ".openmesh" / "jwt_secret").read_text().strip() == first.jwt_secret
    assert config.Settings(jwt_secret="").jwt_secret == first.jwt_secret  # stable across restarts
    (tmp_path / ".openmesh" / "jwt_secret").write_text("short")
    with pytest.raises(ValueError, match="32 bytes"):
        config.Settings(jwt_secret="")


# --- C18: refresh tokens vs access tokens, rotation and reuse -------------------------------------


def test_C18_refresh_token_as_bearer_is_401(coordinator):
    user = make_user(coordinator)
    r = coordinator.get("/me", headers=_bearer(user.refresh_token))
    assert r.status_code == 401


def test_C18_access_token_at_refresh_is_401(coordinator):
    user = make_user(coordinator)
    r = coordinator.post("/auth/refresh", json={"refresh_token": user.token})
    assert r.status_code == 401
    r = coordinator.post("/auth/refresh", json={"refresh_token": "omr_" + "x" * 43})
    assert r.status_code == 401


def test_C18_reusing_a_rotated_refresh_token_revokes_the_family(coordinator, session):
    user = make_user(coordinator)
    first = user.refresh_token
    r1 = coordinator.post("/auth/refresh", json={"refresh_token": first})
    assert r1.status_code == 200
    second = r1.json()["refresh_token"]

    replay = coordinator.post("/auth/refresh", json={"refresh_token": first})
    assert replay.status_code == 401
    # The family is revoked: the legitimately rotated descendant stops working too.
    assert _refresh_status(coordinator, second) == 401
    # The old refresh token authenticates nowhere.
    assert coordinator.get("/me", headers=_bearer(first)).status_code == 401
    assert coordinator.get("/auth/api-keys", headers=_bearer(first)).status_code == 401
    rows = session.exec(select(RefreshToken).where(RefreshToken.user_id == user.id)).all()
    assert len(rows) == 2 and all(r.revoked_at is not None for r in rows)
    session.rollback()  # end the read: on SQLite every transaction holds the write lock
    # Another login is a new family and is unaffected.
    assert _login(coordinator, user.email).status_code == 200


def test_C18_reuse_does_not_touch_other_sessions(coordinator):
    email = random_email()
    _register(coordinator, email=email)
    a = _login(coordinator, email).json()
    b = _login(coordinator, email).json()
    coordinator.post("/auth/refresh", json={"refresh_token": a["refresh_token"]})
    assert _refresh_status(coordinator, a["refresh_token"]) == 401
    assert _refresh_status(coordinator, b["refresh_token"]) == 200


def test_expired_refresh_token_is_401(coordinator, session):
    from datetime import timedelta

    from backend.core.security import now_utc

    user = make_user(coordinator)
    stmt = select(RefreshToken).where(RefreshToken.token_hash == hash_token(user.refresh_token))
    row = session.exec(stmt).one()
    row.expires_at = now_utc() - timedelta(seconds=1)
    session.add(row)
    session.commit()
    assert _refresh_status(coordinator, user.refresh_token) == 401


def test_refresh_validation(coordinator):
    assert coordinator.post("/auth/refresh", json={}).status_code == 422
    assert _refresh_status(coordinator, "") == 422
    assert _refresh_status(coordinator, "omr_" + "x" * 5000) == 422


# --- logout -----------------------------------------------------------------------------------


def test_logout_is_idempotent(coordinator):
    user = make_user(coordinator)
    for _ in range(2):
        assert coordinator.post("/auth/logout", json={"refresh_token": user.refresh_token}).status_code == 204
    assert coordinator.post("/auth/logout", json={"refresh_token": "omr_unknown"}).status_code == 204
    assert _refresh_status(coordinator, user.refresh_token) == 401


def test_logout_with_bearer_only_revokes_all_of_the_users_refresh_tokens(coordinator):
    user = make_user(coordinator)
    other = _login(coordinator, user.email).json()
    bystander = make_user(coordinator)
    assert coordinator.post("/auth/logout", headers=user.headers).status_code == 204
    for rt in (user.refresh_token, other["refresh_token"]):
        assert _refresh_status(coordinator, rt) == 401
    assert _refresh_status(coordinator, bystander.refresh_token) == 200


def test_logout_with_bearer_and_refresh_token(coordinator):
    user = make_user(coordinator)
    other = _login(coordinator, user.email).json()
    r = coordinator.post("/auth/logout", json={"refresh_token": user.refresh_token}, headers=user.headers)
    assert r.status_code == 204
    assert _refresh_status(coordinator, user.refresh_token) == 401
    # Only that session ended.
    assert _refresh_status(coordinator, other["refresh_token"]) == 200


def test_logout_with_expired_bearer_still_revokes_the_refresh_token(coordinator):
    import time

    import jwt

    user = make_user(coordinator)
    claims = _claims(user.id, exp=int(time.time()) - 10)
    expired = jwt.encode(claims, get_settings().jwt_secret, algorithm="HS256")
    r = coordinator.post("/auth/logout", json={"refresh_token": user.refresh_token}, headers=_bearer(expired))
    assert r.status_code == 204
    assert _refresh_status(coordinator, user.refresh_token) == 401


def test_logout_without_any_credential_is_401(coordinator):
    assert coordinator.post("/auth/logout").status_code == 401
    assert coordinator.post("/auth/logout", json={}).status_code == 401
    assert coordinator.post("/auth/logout", headers=_bearer("garbage")).status_code == 401


# --- login rate limit -------------------------------------------------------------------------


def _client_from(coordinator, ip: str):
    from fastapi.testclient import TestClient

    return TestClient(coordinator.app, client=(ip, 40000))


def test_login_rate_limit_per_ip(coordinator, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_LOGIN_PER_MINUTE", "5")
    get_settings.cache_clear()
    ip = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    client = _client_from(coordinator, ip)
    codes = []
    for i in range(7):
        r = client.post("/auth/login", json={"email": random_email(), "password": "Wrong-password-1"},
                        headers={"X-Forwarded-For": f"198.51.100.{i + 1}"})  # untrusted: ignored
        codes.append(r.status_code)
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    assert r.json()["detail"] == "Too many login attempts, try again later"
    assert int(r.headers["Retry-After"]) >= 1
    # Another address is unaffected.
    other = _client_from(coordinator, f"192.0.2.{uuid.uuid4().int % 250 + 1}")
    assert other.post("/auth/login", json={"email": random_email(), "password": "x" * 10}).status_code == 401


def test_C23_login_limit_behind_a_trusted_proxy_uses_the_forwarded_client(coordinator, monkeypatch):
    proxy = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    monkeypatch.setenv("TRUSTED_PROXIES", proxy)
    monkeypatch.setenv("RATE_LIMIT_LOGIN_PER_MINUTE", "2")
    get_settings.cache_clear()
    client = _client_from(coordinator, proxy)
    real = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"

    def attempt(xff: str) -> int:
        return client.post("/auth/login", json={"email": random_email(), "password": "Wrong-password-1"},
                           headers={"X-Forwarded-For": xff}).status_code

    # The client spoofs a left-most hop; the proxy appends the real address: the real one is limited.
    assert [attempt(f"1.2.3.{i}, {real}") for i in range(3)] == [401, 401, 429]
    # Another client behind the same proxy has its own quota.
    assert attempt(f"198.19.{uuid.uuid4().int % 250}.7") == 401


def test_login_rate_limit_per_email_does_not_reveal_existence(coordinator, monkeypatch):
    known = random_email()
    _register(coordinator, email=known)
    monkeypatch.setenv("RATE_LIMIT_LOGIN_PER_MINUTE", "3")
    get_settings.cache_clear()
    unknown = random_email()
    answers = {}
    for email in (known, unknown):
        codes = []
        for _ in range(4):
            # A new address each time: only the per-email limit can trigger.
            client = _client_from(coordinator, f"2001:db8::{uuid.uuid4().hex[:4]}")
            r = client.post("/auth/login", json={"email": email, "password": "Wrong-password-1"})
            codes.append(r.status_code)
        answers[email] = (codes, r.json(), set(r.headers) & {"retry-after"})
    assert answers[known] == answers[unknown]
    assert answers[known][0] == [401, 401, 401, 429]
    assert answers[known][2] == {"retry-after"}
    # Even the right password is refused while over the limit.
    client = _client_from(coordinator, f"2001:db8::{uuid.uuid4().hex[:4]}")
    assert client.post("/auth/login", json={"email": known.upper(), "password": PASSWORD}).status_code == 429


# --- the admin account ------------------------------------------------------------------------


def test_ensure_admin_is_idempotent(session, settings):
    first = service.ensure_admin(session, settings)
    session.commit()
    second = service.ensure_admin(session, settings)
    session.commit()
    assert first is not None and second is not None and first.id == second.id
    admins = session.exec(select(User).where(User.role == Role.admin)).all()
    assert len(admins) == 1 and admins[0].email == settings.admin_email.lower()


def test_ensure_admin_survives_a_concurrent_creator(session, settings, monkeypatch):
    from backend.core.db import get_engine
    from backend.core.security import hash_password

    # Another process creates the admin between our lookup and our insert.
    with Session(get_engine()) as other:
        other.add(User(email=settings.admin_email.lower(), password_hash=hash_password("x" * 12),
                       role=Role.admin))
        other.commit()
    real = service.get_user_by_email
    calls = {"n": 0}

    def stale_then_real(s, email):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(s, email)

    monkeypatch.setattr(service, "get_user_by_email", stale_then_real)
    admin = service.ensure_admin(session, settings)
    session.commit()
    assert admin is not None and admin.role == Role.admin
    assert len(session.exec(select(User).where(User.email == settings.admin_email.lower())).all()) == 1


def test_ensure_admin_never_promotes_a_registered_account(session, settings):
    from backend.core.security import hash_password

    session.add(User(email=settings.admin_email.lower(), password_hash=hash_password("y" * 12),
                     role=Role.client))
    session.commit()
    assert service.ensure_admin(session, settings) is None
    session.commit()
    assert session.exec(select(User).where(User.role == Role.admin)).all() == []


def test_admin_can_log_in_after_start(coordinator, session, settings):
    service.ensure_admin(session, settings)  # the lead's bootstrap does this at start
    session.commit()
    r = _login(coordinator, settings.admin_email, settings.admin_password)
    assert r.status_code == 200, r.text
    me = coordinator.get("/me", headers=_bearer(r.json()["access_token"])).json()
    assert me["role"] == "admin"


def test_self_registration_with_the_admin_email_is_409(coordinator, session, settings):
    service.ensure_admin(session, settings)
    session.commit()
    r = _register(coordinator, email=settings.admin_email.upper(), role="client")
    assert r.status_code == 409


def test_register_refuses_guessable_passwords_with_a_clear_message(coordinator):
    for weak in ("12345678", "Password123", "qwertyuiop", "20261203"):
        r = coordinator.post("/auth/register", json={"email": random_email(), "password": weak, "role": "client"})
        assert r.status_code == 422, weak
        assert "too easy to guess" in r.text
    r = coordinator.post("/auth/register", json={"email": random_email(), "password": "correct horse battery",
                                                 "role": "client"})
    assert r.status_code == 201
