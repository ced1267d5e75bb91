"""The GraphiQL page works with no CDN: it names only the service's own files, the service serves
them (and nothing else from their folder), and its Content-Security-Policy allows nothing else."""

from __future__ import annotations

import hashlib
import re

import pytest
from flask import Flask

from app.graphql import graphiql

IMMUTABLE = {"public": True, "max-age": 31536000, "immutable": True}


@pytest.fixture
def client():
    app = Flask(__name__)
    graphiql.init_app(app)
    app.add_url_rule("/api/graphql", "graphql", lambda: graphiql.page())
    return app.test_client()


def named_urls(html: str) -> list[str]:
    return re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html)


def cache_control(response) -> dict[str, object]:
    cc = response.cache_control
    return {"public": cc.public, "max-age": cc.max_age, "immutable": cc.immutable}


def test_the_page_is_html_and_not_cached(client):
    response = client.get("/api/graphql")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert 'id="graphiql" data-endpoint="/api/graphql"' in response.text


def test_the_page_names_no_remote_url(client):
    html = client.get("/api/graphql").text
    assert not re.search(r"https?:|//[a-z0-9]", html, re.IGNORECASE), html


def test_every_file_the_page_names_is_served_for_a_year(client):
    urls = named_urls(client.get("/api/graphql").text)
    prefix = f"/api/graphql/ide/{graphiql.version()}/"
    assert {url.removeprefix(prefix) for url in urls} == {
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "graphiql.min.css",
        "boot.js",
        "boot.css",
    }
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        expected = "text/javascript" if url.endswith(".js") else "text/css"
        assert response.mimetype == expected, (url, response.mimetype)
        assert cache_control(response) == IMMUTABLE, (url, response.headers["Cache-Control"])
        assert response.data == (graphiql.ASSETS / url.removeprefix(prefix)).read_bytes()
        assert client.head(url).status_code == 200


def test_the_scripts_load_in_order_and_boot_last(client):
    html = client.get("/api/graphql").text
    scripts = [url.rsplit("/", 1)[1] for url in re.findall(r'<script src="([^"]+)"', html)]
    assert scripts == ["react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "boot.js"]


def test_the_licences_are_served_as_text(client):
    for name in ("LICENSE.graphiql", "LICENSE.react"):
        response = client.get(f"/api/graphql/ide/{graphiql.version()}/{name}")
        assert response.status_code == 200, name
        assert response.mimetype == "text/plain"
        assert b"MIT License" in response.data


@pytest.mark.parametrize(
    "tail",
    [
        "unknown.js",
        "README.md",  # in the folder, not served
        "graphiql.min.js.map",
        "",
        "..",
        "../graphiql.py",
        "..%2Fgraphiql.py",
        "%2E%2E%2Fgraphiql.py",
        "..%5Cgraphiql.py",
        "ide/boot.js",
    ],
)
def test_nothing_else_is_served(client, tail):
    assert client.get(f"/api/graphql/ide/{graphiql.version()}/{tail}").status_code == 404


def test_another_version_is_not_served(client):
    assert client.get("/api/graphql/ide/graphiql-0.0.0/boot.js").status_code == 404
    assert client.get("/api/graphql/ide/boot.js").status_code == 404


def test_the_version_names_the_vendored_graphiql():
    assert re.fullmatch(r"graphiql-3\.8\.3-[0-9a-f]{8}", graphiql.version())


def test_the_csp_allows_only_the_services_own_files(client):
    csp = client.get("/api/graphql").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in csp and "blob:" not in csp and "*" not in csp
    assert not re.search(r"https?:|unpkg|jsdelivr|cdn|\.com|\.org", csp, re.IGNORECASE), csp


def test_the_page_follows_its_endpoint():
    app = Flask(__name__)
    graphiql.init_app(app, "/v2/graphql")
    app.add_url_rule("/v2/graphql", "graphql", lambda: graphiql.page("/v2/graphql"))
    client = app.test_client()
    html = client.get("/v2/graphql").text
    assert 'data-endpoint="/v2/graphql"' in html
    urls = named_urls(html)
    assert urls and all(url.startswith(f"/v2/graphql/ide/{graphiql.version()}/") for url in urls)
    assert all(client.get(url).status_code == 200 for url in urls)


def test_the_endpoint_is_escaped_in_the_page():
    assert 'data-endpoint="/a&#34;b"' in graphiql.page('/a"b').get_data(as_text=True)


def test_the_served_files_name_no_source_map():
    for name in graphiql.SCRIPTS + graphiql.STYLES:
        assert b"sourceMappingURL" not in (graphiql.ASSETS / name).read_bytes(), name


def test_the_readme_records_each_vendored_files_checksum():
    readme = (graphiql.ASSETS / "README.md").read_text()
    for name in sorted(graphiql.SERVED - set(graphiql.OWN)):
        digest = hashlib.sha256((graphiql.ASSETS / name).read_bytes()).hexdigest()
        rows = [line for line in readme.splitlines() if line.startswith(f"| `{name}` |")]
        assert len(rows) == 1 and digest in rows[0], name
