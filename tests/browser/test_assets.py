"""The pages router on its own (no browser, no lifespan): what it serves and refuses.

- every page is HTML with a strict Content-Security-Policy and no inline script;
- nothing refers to another origin (the pages must work on a closed network);
- only the packaged files are served: unknown names and traversal attempts are 404;
- assets revalidate with ETag / 304.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from app.main import create_app
from app.pages import ASSET_PREFIX, PAGES
from app.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(demo=True))  # the lifespan is not entered: no DB needed
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pages.test") as c:
        yield c


async def test_pages_are_html_with_a_strict_csp(client: httpx.AsyncClient) -> None:
    for path in PAGES:
        r = await client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'self'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        # Scripts only by src (CSP would block inline ones anyway); no inline style attrs.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text), path
        assert " style=" not in r.text, path
        assert '<html lang="en"' in r.text


async def test_nothing_refers_to_another_origin(client: httpx.AsyncClient) -> None:
    bodies = []
    for path in PAGES:
        page = (await client.get(path)).text
        bodies.append(page)
        for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
            assert ref.startswith(("/", "#")), (path, ref)
            if ref.startswith(ASSET_PREFIX):
                asset = await client.get(ref)
                assert asset.status_code == 200, ref
                bodies.append(asset.text)
    for name in ("common.js", "agent.js", "supervisor.js", "wallboard.js", "chart.js"):
        bodies.append((await client.get(f"{ASSET_PREFIX}/{name}")).text)
    for body in bodies:
        # The SVG namespace is an identifier, not a fetch.
        urls = set(re.findall(r"https?://[^\s\"'`)]+", body)) - {"http://www.w3.org/2000/svg"}
        assert not urls, urls


@pytest.mark.parametrize(
    "path",
    [
        f"{ASSET_PREFIX}/nope.js",
        f"{ASSET_PREFIX}/agent.html",  # pages only under their own paths
        f"{ASSET_PREFIX}/..%2f__init__.py",
        f"{ASSET_PREFIX}/%2e%2e%2f%2e%2e%2fsettings.py",
        f"{ASSET_PREFIX}/__init__.py",
    ],
)
async def test_only_packaged_assets_are_served(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_assets_revalidate_with_etag(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{ASSET_PREFIX}/common.css")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/css; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache"
    again = await client.get(
        f"{ASSET_PREFIX}/common.css", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    head = await client.head("/wallboard")
    assert head.status_code == 200
    slash = await client.get("/agent/")
    assert slash.status_code == 308 and slash.headers["location"] == "/agent"
