"""Browser sessions of the workspace: the API's tokens exchanged for a signed cookie.

A clerk logs in once with an API token (``dunning serve --tokens``); the server answers with
a cookie ``dunning_session`` (HttpOnly, SameSite=Strict, Secure over https) that holds::

    base64url(json {"f": token fingerprint, "c": CSRF token, "e": expiry (unix s)})
    + "." + base64url(HMAC-SHA256(secret, payload))

The token itself is never in the cookie: ``f`` is an HMAC of the token under the session
secret, looked up in the token table on every request (a token removed from the file no
longer opens a session after a restart). The secret comes from ``$DUNNING_SESSION_SECRET``
(at least 32 characters), a file named by ``$DUNNING_SESSION_SECRET_FILE``, or is drawn at
random per server start (then sessions end with the process) — never from code or the store.

Every state-changing form carries the session's CSRF token in a hidden field ``csrf``
(checked in constant time); the login form, before there is a session, carries an HMAC of a
random nonce held in its own short-lived cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InputError

SESSION_COOKIE = "dunning_session"
LOGIN_COOKIE = "dunning_login"
SECRET_ENV = "DUNNING_SESSION_SECRET"
SECRET_FILE_ENV = "DUNNING_SESSION_SECRET_FILE"
SESSION_SECONDS = 8 * 3600  # one working day
LOGIN_SECONDS = 600


def session_secret(env: dict[str, str] | None = None) -> bytes:
    """The signing secret: from the environment, a file, or random for this process.

    Raises :class:`InputError` when the configured secret is shorter than 32 characters or
    its file cannot be read.
    """
    env = os.environ if env is None else env
    value = env.get(SECRET_ENV, "")
    where = f"${SECRET_ENV}"
    if not value and env.get(SECRET_FILE_ENV):
        path = Path(env[SECRET_FILE_ENV])
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"${SECRET_FILE_ENV} {path}: cannot read the session secret "
                             f"({exc.strerror})") from None
        where = str(path)
    if not value:
        return secrets.token_bytes(32)
    if len(value) < 32:
        raise InputError(f"{where}: session secret has {len(value)} characters; expected at "
                         "least 32")
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A logged-in browser: who (the token's principal) and its CSRF token."""

    who: Any  # dunning.api.Principal: .name, .role
    csrf: str
    expires: int

    @property
    def can_review(self) -> bool:
        return self.who.role == "reviewer"

    @property
    def can_change_rules(self) -> bool:
        """Proposes and approves rule files (``dunning.ops.rule_approval.LEGAL_ROLE``)."""
        from dunning.ops.rule_approval import LEGAL_ROLE

        return self.who.role == LEGAL_ROLE


class Sessions:
    """Signs and checks session cookies and CSRF tokens for one server process.

    ``tokens``: the API's ``{token: Principal}`` table (``dunning.api.load_tokens``).
    """

    def __init__(self, tokens: dict[str, Any], secret: bytes) -> None:
        self._secret = secret
        self._by_fingerprint = {self._fingerprint(t): who for t, who in tokens.items()}

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"\n" + data, hashlib.sha256).digest()

    def _fingerprint(self, token: str) -> str:
        return _b64(self._mac("token", token.encode()))[:32]

    # -- login ------------------------------------------------------------------------------
    def login(self, token: str, now: float | None = None) -> tuple[Session, str] | None:
        """``(session, cookie value)`` for a known token, None for an unknown one.

        Every known token is compared (constant time, no early exit).
        """
        fp = self._fingerprint(token.strip())
        found = None
        for known, who in self._by_fingerprint.items():
            if hmac.compare_digest(known, fp):
                found = who
        if found is None:
            return None
        expires = int((now or time.time()) + SESSION_SECONDS)
        session = Session(found, secrets.token_urlsafe(24), expires)
        payload = json.dumps({"f": fp, "c": session.csrf, "e": expires},
                             separators=(",", ":")).encode()
        return session, _b64(payload) + "." + _b64(self._mac("session", payload))

    def session(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session of a cookie value; None if absent, forged, expired or revoked."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 1024:
            return None
        body, sig = cookie.split(".")
        try:
            payload, mac = _unb64(body), _unb64(sig)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            data = json.loads(payload)
            fp, csrf, expires = str(data["f"]), str(data["c"]), int(data["e"])
        except (ValueError, KeyError, TypeError):
            return None
        who = self._by_fingerprint.get(fp)
        if who is None or expires < (now or time.time()):
            return None
        return Session(who, csrf, expires)

    # -- CSRF -------------------------------------------------------------------------------
    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(session.csrf.encode(), str(sent).encode())

    def login_nonce(self) -> tuple[str, str]:
        """``(cookie value, form token)`` for the login form."""
        nonce = secrets.token_urlsafe(18)
        expires = str(int(time.time()) + LOGIN_SECONDS)
        cookie = f"{nonce}.{expires}"
        return cookie, _b64(self._mac("login", cookie.encode()))

    def login_csrf_ok(self, cookie: str | None, sent: str | None) -> bool:
        if not cookie or not sent or cookie.count(".") != 1:
            return False
        expires = cookie.split(".")[1]
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(_b64(self._mac("login", cookie.encode())), str(sent))
