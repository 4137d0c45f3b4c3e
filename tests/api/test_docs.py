"""The API docs pages work on a closed network: every asset they load comes from here."""

from __future__ import annotations

import re

from tests.api.conftest import Api

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


async def _local_assets(api: Api, page: str) -> list[str]:
    r = await api.client.get(page)  # public, like FastAPI's own pages
    assert r.status_code == 200
    html = r.text
    assert "http://" not in html and "https://" not in html, html
    refs = [a or b for a, b in URL.findall(html)]
    assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    return refs


async def test_swagger_ui_loads_only_local_assets(api: Api) -> None:
    refs = await _local_assets(api, "/docs")
    assert "/openapi.json" in refs
    assets = [ref for ref in refs if ref != "/openapi.json"]
    assert {ref.rsplit(".", 1)[-1] for ref in assets} >= {"js", "css"}
    for ref in assets:
        r = await api.client.get(ref)
        assert r.status_code == 200, ref
        assert len(r.content) > 1000, ref
    assert (await api.client.get("/docs/oauth2-redirect")).status_code == 200


async def test_redoc_loads_only_local_assets(api: Api) -> None:
    for ref in await _local_assets(api, "/redoc"):
        assert (await api.client.get(ref)).status_code == 200, ref
