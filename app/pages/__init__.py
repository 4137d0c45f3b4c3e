"""Web pages: sign-in, agent desktop, supervisor view and wallboard.

Invariants:
- Everything a page needs is served from this package (``static/``); no CDN, no font or
  script fetched at run time, so the pages work on a closed network.
- Only the files present in ``static/`` when the module is imported are served, looked
  up by exact name: no path ever reaches the filesystem from a request.
- Pages carry a strict Content-Security-Policy (scripts and styles from this origin only,
  no inline script), so markup injected through CRM data could not run.
- The pages are static shells; data comes from the REST API and websockets with the
  bearer token the sign-in page stores in ``sessionStorage``.

Pages (all plain HTML + ES modules in ``static/``):
- ``/signin``: ``POST /api/v1/auth/token``; goes back to ``?next=`` (same-site paths only)
  or to the page of the role.
- ``/agent``: log in to a device, ready / pause / log out, the screen pop from the
  ``offer`` message on ``/ws/agents/{id}``, call timer, wrap-up with a disposition.
  Agents see their own desktop; a supervisor may open ``/agent?agent=<id>``.
- ``/supervisor``: polls ``/api/v1/live/{agents,queues,calls}`` every 2 s; filters by
  queue, team and state; force pause / log out through a confirmation dialog.
- ``/wallboard``: ``/ws/wallboard`` snapshot + deltas, resubscribes on a sequence gap;
  tiles per queue and overall, a last-hour chart kept in the browser's localStorage.

``router`` is what ``app.main.create_app`` includes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

__all__ = ["ASSET_PREFIX", "PAGES", "router"]

logger = logging.getLogger(__name__)

ASSET_PREFIX: Final = "/assets"

# Path → HTML file in static/.  The index is a list of the others.
PAGES: Final[dict[str, str]] = {
    "/": "index.html",
    "/signin": "signin.html",
    "/agent": "agent.html",
    "/supervisor": "supervisor.html",
    "/wallboard": "wallboard.html",
    "/reports": "reports.html",
    "/cases": "cases.html",
}

_MEDIA_TYPES: Final[dict[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}

# connect-src 'self' covers ws:/wss: to the same host in current browsers; the explicit
# schemes are kept for older Chromium builds still found on wall-screen sticks.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _load_assets() -> dict[str, _Asset]:
    assets: dict[str, _Asset] = {}
    root = resources.files(__package__).joinpath("static")
    for entry in root.iterdir():
        name = entry.name
        suffix = name[name.rfind(".") :] if "." in name else ""
        media_type = _MEDIA_TYPES.get(suffix)
        if media_type is None or not entry.is_file():
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[name] = _Asset(body=body, media_type=media_type, etag=etag)
    return assets


_ASSETS: Final = _load_assets()

router = APIRouter(include_in_schema=False)


def _serve(request: Request, asset: _Asset, *, page: bool) -> Response:
    headers = {
        "ETag": asset.etag,
        # Revalidate every time: a deploy must reach wall screens that never reload by hand.
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if page:
        headers["Content-Security-Policy"] = _CSP
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(content=asset.body, media_type=asset.media_type, headers=headers)


def _page_endpoint(file_name: str) -> Callable[[Request], Awaitable[Response]]:
    asset = _ASSETS[file_name]

    async def endpoint(request: Request) -> Response:
        return _serve(request, asset, page=True)

    endpoint.__name__ = "page_" + file_name.removesuffix(".html")
    return endpoint


def _redirect_endpoint(target: str) -> Callable[[], Awaitable[Response]]:
    async def endpoint() -> Response:
        return RedirectResponse(target, status_code=308)

    endpoint.__name__ = "redirect_" + target.strip("/")
    return endpoint


for _path, _file in PAGES.items():
    router.add_api_route(_path, _page_endpoint(_file), methods=["GET", "HEAD"])
    if _path != "/":
        # "/agent/" typed by hand lands on the page, not a 404.
        router.add_api_route(_path + "/", _redirect_endpoint(_path), methods=["GET", "HEAD"])


@router.get("/favicon.ico", name="favicon")
async def favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico whatever the page says; answer instead of logging 404s.
    return _serve(request, _ASSETS["favicon.svg"], page=False)


@router.get(ASSET_PREFIX + "/{name}", name="page_asset")
async def asset(name: str, request: Request) -> Response:
    found = _ASSETS.get(name)
    if found is None or name.endswith(".html"):
        raise HTTPException(status_code=404, detail="no such asset")
    return _serve(request, found, page=False)
