"""FastAPI dependencies: the database, the settings, who is asking, and CSRF protection.

Two ways to be signed in:

- API clients send ``Authorization: Bearer <token>`` (from ``POST /api/v1/auth/token``).
- Browsers carry a session cookie (signed, HttpOnly, SameSite=Lax, Secure by default) set by
  ``POST /api/v1/auth/session`` or the web sign-in page. Because a browser sends the cookie
  on its own, every unsafe request made with it (POST, PUT, PATCH, DELETE) must also carry
  the session's CSRF token, as the ``X-CSRF-Token`` header (htmx, fetch) or the
  ``csrf_token`` form field (plain forms). ``current_user`` enforces this.

Before sign-in there is no session, so signing in uses a double-submit token (against
login CSRF, where another site signs the browser in as the attacker):
``anonymous_csrf_token`` sets a random value in a cookie and returns it, and
``require_csrf`` checks that the posted token equals the cookie. The web sign-in form embeds
it; an API client in the browser gets it from ``GET /api/v1/auth/csrf`` and sends it as the
``X-CSRF-Token`` header of ``POST /api/v1/auth/session``. Another site can neither read
that response nor, with SameSite=Lax, make the browser send the cookie with its POST.

``StrictTransportSecurity`` adds the HSTS header to every response while secure cookies are
on (``Settings.cookie_secure``): a browser that has once reached the clinic over HTTPS then
refuses plain HTTP to it, which would otherwise expose the session cookie's first request.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ketapath.config import Settings
from ketapath.services import auth
from ketapath.services.errors import AuthenticationFailed, PermissionDenied
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
ANONYMOUS_CSRF_COOKIE = "ketapath_csrf"
# One year; no includeSubDomains or preload: other hosts under the clinic's domain are not
# this application's to decide for.
HSTS_HEADER = "Strict-Transport-Security"
HSTS_VALUE = "max-age=31536000"

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt="ketapath-session")


def set_session_cookie(response: Response, settings: Settings, issued: auth.IssuedToken) -> None:
    """Put a new web session (from ``auth.start_session``) in the response's cookie."""
    response.set_cookie(
        settings.session_cookie_name,
        _serializer(settings).dumps(issued.token),
        max_age=int(settings.session_ttl_hours * 3600),
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.session_cookie_name,
        path="/",
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )


def session_token(request: Request, settings: Settings) -> str | None:
    """The raw session token from the cookie, if the cookie is there and its signature holds."""
    cookie = request.cookies.get(settings.session_cookie_name)
    if not cookie:
        return None
    try:
        token: str = _serializer(settings).loads(
            cookie, max_age=int(settings.session_ttl_hours * 3600)
        )
    except BadSignature:
        return None
    return token


async def _posted_csrf(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it; the endpoint can read it again
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


async def current_user(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    bearer: Annotated[str | None, Depends(bearer_scheme)],
) -> Actor:
    """Who is asking: from the bearer token, else from the session cookie (with CSRF)."""
    if bearer:
        resolved = await run_in_threadpool(auth.resolve_token, db, bearer, kind="api")
        request.state.auth = resolved
        return resolved.actor
    token = session_token(request, settings)
    if token is None:
        raise AuthenticationFailed("Not signed in: send a bearer token or sign in.")
    resolved = await run_in_threadpool(auth.resolve_token, db, token, kind="session")
    request.state.auth = resolved
    if request.method not in SAFE_METHODS and not _same(
        await _posted_csrf(request), resolved.csrf_token
    ):
        raise PermissionDenied(
            f"csrf_token: missing or wrong; send the {CSRF_HEADER} header or the "
            f"{CSRF_FIELD} form field with the token of your session.",
            field=CSRF_FIELD,
        )
    return resolved.actor


CurrentUser = Annotated[Actor, Depends(current_user)]


async def optional_user(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    bearer: Annotated[str | None, Depends(bearer_scheme)],
) -> Actor | None:
    """Like ``current_user`` for pages that also show something when signed out."""
    try:
        return await current_user(request, db, settings, bearer)
    except AuthenticationFailed:
        return None


def anonymous_csrf_token(request: Request, response: Response, settings: Settings) -> str:
    """The CSRF token for a form shown before sign-in (double-submit cookie)."""
    token = request.cookies.get(ANONYMOUS_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response.set_cookie(
        ANONYMOUS_CSRF_COOKIE,
        token,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    return token


def csrf_token_for(request: Request) -> str | None:
    """The session's CSRF token, for embedding in forms (after ``current_user`` ran)."""
    resolved = getattr(request.state, "auth", None)
    return resolved.csrf_token if resolved is not None else None


async def require_csrf(request: Request, settings: SettingsDep) -> None:
    """Refuse an unsafe request whose CSRF token matches neither the session nor the cookie.

    Use on form posts that may come before sign-in (the sign-in form itself); requests
    that depend on ``current_user`` are already checked.
    """
    if request.method in SAFE_METHODS:
        return
    posted = await _posted_csrf(request)
    expected: str | None = request.cookies.get(ANONYMOUS_CSRF_COOKIE)
    resolved = getattr(request.state, "auth", None)
    if resolved is not None and resolved.csrf_token:
        expected = resolved.csrf_token
    if not _same(posted, expected):
        raise PermissionDenied(
            "csrf_token: missing or wrong; reload the page and try again.", field=CSRF_FIELD
        )


class StrictTransportSecurity:
    """ASGI middleware: ``Strict-Transport-Security`` on every HTTP response (API, pages,
    static files, error answers) while ``Settings.cookie_secure`` is on; none when it is
    off (a deployment on plain HTTP, where the header would be ignored anyway).

    The settings are read per request from the application (``app.state.settings``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _secure_cookies(scope):
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault(HSTS_HEADER, HSTS_VALUE)
            await send(message)

        await self.app(scope, receive, send_with_hsts)


def _secure_cookies(scope: Scope) -> bool:
    settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
    return bool(getattr(settings, "cookie_secure", True))
