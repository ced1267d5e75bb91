"""Headers every client meets: no content headers on 204 and 304, one charset on /metrics, the
package's version in the OpenAPI document; the docs page's files served by the service itself."""

from __future__ import annotations

import re

import pytest

from app import VERSION


def test_a_204_has_no_content_type(client, registered):
    response = client.post("/api/auth/logout")
    assert response.status_code == 204
    assert "Content-Type" not in response.headers and response.data == b""


@pytest.mark.parametrize("path", ["{url}", "/api/users"])  # the cached read path, and Flask's
def test_a_304_has_no_content_type(client, registered, admin, path):
    url, headers = path.format(url=registered["url"]), admin if path == "/api/users" else {}
    etag = client.get(url, headers=headers).headers["ETag"]
    response = client.get(url, headers={**headers, "If-None-Match": etag})
    assert response.status_code == 304
    assert "Content-Type" not in response.headers and response.data == b""


def test_metrics_name_one_charset(client):
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.count("charset") == 1, content_type
    assert content_type.startswith("text/plain")


def test_the_openapi_version_is_the_package_version(client):
    assert VERSION != "0+unknown"  # the tests run on the installed project
    assert client.get("/api/openapi.json").get_json()["info"]["version"] == VERSION


def test_the_docs_page_loads_its_files_from_the_service(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {asset.rsplit("/", 1)[1] for asset in assets} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    assert all(asset.startswith("/api/docs/assets/") for asset in assets), assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.data) > 1000
        assert "immutable" in response.headers["Cache-Control"]
    assert client.get("/api/docs/assets/0.0.0/../../openapi.json").status_code == 404
