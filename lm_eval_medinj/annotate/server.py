"""The rating page: one rater, one annotation folder, a Starlette app served by uvicorn.

    GET  /                 the page (French; static HTML + JS + CSS from ``static/``)
    GET  /api/session      the rater, the scale, the items in this rater's order, the ratings given
    POST /api/ratings      {"item", "rating", "comment"}: appended to ratings/<rater>.jsonl (fsync) before the answer

The page writes item text with ``textContent`` only, and a Content-Security-Policy allows no inline
script, so a model's answer is shown as text, never run. Each rater sees the items in their own
order, fixed by the study's seed and the rater's name (:func:`rater_order`).

Access: by default the server listens on 127.0.0.1 and answers only requests whose ``Host`` is a
loopback name (no DNS rebinding). On any other address a token is required (:class:`TokenGate`):
``GET /?token=T`` once (the answer sets an HttpOnly, SameSite=Strict cookie and redirects to ``/``
so the token leaves the address bar), or the header ``Authorization: Bearer T``; anything else is
401. The token lives in memory only; uvicorn's access log (which would print it) is off.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import secrets
import socket
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lm_eval_medinj.annotate.folder import AnnotationFolder, journal_path, read_folder
from lm_eval_medinj.annotate.journal import JournalWriter
from lm_eval_medinj.annotate.records import RatingLine, validation_message
from lm_eval_medinj.errors import UsageError

STATIC_DIR = Path(__file__).resolve().parent / "static"
TOKEN_ENV = "MEDINJ_ANNOTATE_TOKEN"
MIN_TOKEN_CHARS = 16
MAX_COMMENT_CHARS = 10_000
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
log = logging.getLogger(__name__)


def rater_order(item_ids: Sequence[str], seed: int, rater: str) -> list[str]:
    """This rater's order of the items: a shuffle seeded by the study's seed and the rater's name."""
    order = list(item_ids)
    random.Random(f"{seed}:{rater}").shuffle(order)  # a str seed is hashed with SHA-512: stable everywhere
    return order


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_access(host: str, token: str | None) -> None:
    """Refuse to serve off loopback without a token, and a token too short to guess."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise UsageError(
            f"the token must have at least {MIN_TOKEN_CHARS} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    if token is None and not is_loopback(host):
        raise UsageError(f"--host {host} is not loopback: give an access token (--token or ${TOKEN_ENV})")


class RatingRequest(BaseModel):
    """The body of ``POST /api/ratings``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    item: str
    rating: int
    comment: str = Field(default="", max_length=MAX_COMMENT_CHARS)


class RaterSession:
    """One rater's items, order and ratings; the only writer of their journal while it lives."""

    def __init__(self, folder: AnnotationFolder, rater: str) -> None:
        self.folder = folder
        self.rater = rater
        self.order = rater_order(list(folder.items), folder.study.seed, rater)
        self.writer = JournalWriter(journal_path(folder.path, rater), folder.scale, set(folder.items))
        self.ratings = dict(self.writer.journal.ratings)
        self._lock = threading.Lock()

    def state(self) -> dict[str, Any]:
        items = self.folder.items
        return {
            "rater": self.rater,
            "scale": self.folder.scale.model_dump(mode="json"),
            "order": self.order,
            "items": {name: items[name].model_dump(exclude={"item"}) for name in self.order},
            "ratings": {name: {"rating": r.rating, "comment": r.comment} for name, r in self.ratings.items()},
        }

    def rate(self, request: RatingRequest) -> RatingLine:
        """Check a rating against the items and the scale, then journal it durably."""
        if request.item not in self.folder.items:
            raise ValueError(f"élément inconnu : {request.item!r}")
        if request.rating not in self.folder.scale.values:
            values = ", ".join(map(str, self.folder.scale.values))
            raise ValueError(f"note {request.rating} hors de l'échelle ({values})")
        line = RatingLine(
            item=request.item,
            rating=request.rating,
            comment=request.comment,
            at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        with self._lock:
            self.writer.append(line)
            self.ratings[line.item] = line
        return line

    def close(self) -> None:
        self.writer.close()


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


class TokenGate(BaseHTTPMiddleware):
    """Every request carries the token (cookie or bearer header), or is a ``GET ?token=`` that sets the cookie."""

    def __init__(self, app: Any, token: str, cookie: str) -> None:
        super().__init__(app)
        self.token = token.encode("utf-8")
        self.cookie = cookie

    def _valid(self, supplied: str | None) -> bool:
        return supplied is not None and secrets.compare_digest(supplied.encode("utf-8"), self.token)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        supplied = request.query_params.get("token")
        if supplied is not None and request.method == "GET" and self._valid(supplied):
            response = RedirectResponse(request.url.remove_query_params("token").path or "/", status_code=303)
            response.set_cookie(self.cookie, supplied, httponly=True, samesite="strict", path="/")
            return response
        bearer = request.headers.get("authorization", "")
        if self._valid(request.cookies.get(self.cookie)) or (
            bearer.startswith("Bearer ") and self._valid(bearer.removeprefix("Bearer "))
        ):
            return await call_next(request)
        return PlainTextResponse(
            "Accès refusé : jeton manquant ou invalide (ouvrez l'adresse avec ?token=...).",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )


def create_app(session: RaterSession, token: str | None, host: str, port: int) -> Starlette:
    """The page and its API for one rater; ``token`` set: every request must carry it."""

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "page.html", media_type="text/html; charset=utf-8")

    async def state(request: Request) -> Response:
        return JSONResponse(session.state())

    def rate(request_body: bytes) -> Response:
        try:
            line = session.rate(RatingRequest.model_validate_json(request_body))
        except ValidationError as error:
            return JSONResponse({"error": f"requête invalide, {validation_message(error)}"}, status_code=400)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        rated = sum(name in session.ratings for name in session.order)
        return JSONResponse({"saved": line.model_dump(), "rated": rated, "total": len(session.order)})

    async def post_rating(request: Request) -> Response:
        # JSON only: a cross-site form cannot send it without a CORS preflight, which is never granted.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "Content-Type: application/json attendu"}, status_code=415)
        return await run_in_threadpool(rate, await request.body())  # the fsync blocks: off the event loop

    middleware = [Middleware(SecurityHeaders)]
    if token is not None:
        middleware.append(Middleware(TokenGate, token=token, cookie=f"medinj_annotate_{port}"))
    else:  # loopback only: refuse other Host names (DNS rebinding)
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=sorted({"127.0.0.1", "localhost", host})))
    routes = [
        Route("/", page, methods=["GET"]),
        Route("/api/session", state, methods=["GET"]),
        Route("/api/ratings", post_rating, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes, middleware=middleware)


def listen(host: str, port: int) -> socket.socket:
    """The bound socket, so that an address in use is one clear error before anything is served."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def serve(folder_path: Path, rater: str, host: str = "127.0.0.1", port: int = 8765, token: str | None = None) -> None:
    """Serve the page until interrupted (Ctrl-C); every rating is on disk before the page hears back."""
    import uvicorn

    check_access(host, token)
    folder = read_folder(folder_path)
    sock = listen(host, port)
    session = RaterSession(folder, rater)
    try:
        app = create_app(session, token, host, port)
        rated = sum(name in session.ratings for name in session.order)
        shown = f"[{host}]" if ":" in host else host
        print(
            f"medinj annotate: rater {rater!r}, {rated} / {len(session.order)} rated; "
            f"open http://{shown}:{port}/{'?token=<token>' if token else ''} (Ctrl-C to stop)",
            flush=True,
        )
        config = uvicorn.Config(app, access_log=False, log_level="warning", lifespan="off")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        session.close()
        sock.close()
