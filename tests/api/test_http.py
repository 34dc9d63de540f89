"""The HTTP shell around the routes: HEAD, unknown paths and methods, Host, CORS, the offline docs, the
OpenAPI error bodies, the response models against real answers, the documented examples, and proxy
headers on a real `spinekg serve`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from spinekg.api import schemas as api_schemas
from spinekg.api.main import create_app
from spinekg.api.schemas import EXAMPLES, ErrorBody, Verdict
from spinekg.api.settings import Settings
from tests.api.conftest import LiveServer, _free_port
from tests.conftest import REPO, load_cases

CASES = load_cases("api.yaml")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Pages the app serves beside the documented operations.
DOC_PAGES = ["/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"]


def _spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _example_url(path: str, operation: dict[str, Any]) -> str:
    """A concrete URL for a templated path, from each path parameter's documented example."""
    for param in operation.get("parameters", []):
        if param["in"] == "path":
            example = (param.get("schema", {}).get("examples") or [param.get("example")])[0]
            assert example is not None, f"{path}: parameter {param['name']} has no example"
            path = path.replace("{" + param["name"] + "}", str(example))
    return path


def get_urls(client: TestClient) -> list[str]:
    spec = _spec(client)
    return [_example_url(path, item["get"]) for path, item in spec["paths"].items() if "get" in item] + DOC_PAGES


# -- HEAD -------------------------------------------------------------------------------------------


def test_head_answers_like_get_on_every_get_route(client: TestClient) -> None:
    urls = get_urls(client)
    assert {"/healthz", "/codes/22512", "/sparql", "/docs"} <= set(urls)
    for url in urls:
        got, head = client.get(url), client.head(url)
        assert head.status_code == got.status_code, url
        assert head.content == b"", f"{url}: HEAD has no body"
        assert {k: v for k, v in head.headers.items() if k != "date"} == {k: v for k, v in got.headers.items() if k != "date"}, (
            url
        )


def test_head_where_there_is_no_get_is_405(client: TestClient) -> None:
    response = client.head("/claims/validate")
    assert response.status_code == 405 and response.headers["allow"] == "POST" and response.content == b""


# -- unknown paths and methods: JSON, never a 5xx ------------------------------------------------------


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("GET", "/nope", 404),
        ("POST", "/nope", 404),
        ("GET", "/codes/", 404),  # no redirect: its Location would echo the Host header
        ("GET", "/static-offline-docs/nope.js", 404),
        ("OPTIONS", "/healthz", 405),
        ("OPTIONS", "/sparql", 405),  # OPTIONS without a CORS preflight's headers
        ("PUT", "/healthz", 405),
        ("DELETE", "/codes/22512", 405),
        ("PATCH", "/claims/validate", 405),
        ("TRACE", "/sparql", 405),
        ("PROPFIND", "/codes", 405),
        ("GET", "/claims/validate", 405),
        ("POST", "/healthz", 405),
        ("POST", "/static-offline-docs/swagger-ui.css", 405),
    ],
)
def test_unknown_paths_and_methods_are_json_errors(client: TestClient, method: str, path: str, status: int) -> None:
    response = client.request(method, path, follow_redirects=False)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = TypeAdapter(ErrorBody).validate_python(response.json())
    assert body.detail and body.field == ("path" if status == 404 else "method")
    if status == 405:
        assert method not in response.headers["allow"]


# -- Host ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/sparql", "/codes/", "/nope", "/docs", "/openapi.json", "/codes/22512"])
def test_nothing_echoes_the_host_header(client: TestClient, url: str) -> None:
    response = client.get(url, headers={"host": "evil.example"}, follow_redirects=False)
    assert "evil.example" not in response.text
    assert not any("evil.example" in value for value in response.headers.values()), dict(response.headers)


def test_every_get_route_keeps_the_host_to_itself(client: TestClient) -> None:
    for url in get_urls(client):
        response = client.get(url, headers={"host": "evil.example"}, follow_redirects=False)
        assert "evil.example" not in response.text, url
        assert not any("evil.example" in value for value in response.headers.values()), url


def test_allowed_hosts() -> None:
    app = create_app(Settings(allowed_hosts=["api.example.org", "*.spinekg.example"]))
    client = TestClient(app)  # no lifespan: these requests never reach the graph
    assert client.get("/openapi.json", headers={"host": "api.example.org"}).status_code == 200
    assert client.get("/openapi.json", headers={"host": "eu.spinekg.example:8443"}).status_code == 200
    refused = client.get("/openapi.json", headers={"host": "evil.example"})
    assert refused.status_code == 400 and refused.json() == {"detail": "Invalid host header", "field": "Host"}
    assert client.head("/openapi.json", headers={"host": "evil.example"}).content == b""


# -- CORS ---------------------------------------------------------------------------------------------

YASGUI = "https://yasgui.example"


def _preflight(client: TestClient, path: str, origin: str, method: str = "POST") -> Any:
    return client.options(
        path,
        headers={"origin": origin, "access-control-request-method": method, "access-control-request-headers": "content-type"},
    )


def test_cors_preflight_for_sparql_succeeds(client: TestClient) -> None:
    response = _preflight(client, "/sparql", YASGUI)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()
    query = client.get("/codes/22512/pairs", headers={"origin": YASGUI})
    assert query.headers["access-control-allow-origin"] == "*"
    sparql = client.post(
        "/sparql", content="ASK { ?s ?p ?o }", headers={"origin": YASGUI, "content-type": "application/sparql-query"}
    )
    assert sparql.status_code == 200 and sparql.headers["access-control-allow-origin"] == "*"
    assert "X-SPARQL-MaxRows" in sparql.headers["access-control-expose-headers"]


@pytest.mark.parametrize("path", ["/claims/validate", "/claims/validate/batch"])
def test_cors_grants_nothing_on_claims_by_default(client: TestClient, path: str) -> None:
    response = _preflight(client, path, YASGUI)
    assert response.status_code == 400 and "access-control-allow-origin" not in response.headers
    assert response.json() == {"detail": "Disallowed CORS origin", "field": "Origin"}
    claim = client.post(path, json=EXAMPLES["claim"] if path.endswith("validate") else {"claims": [EXAMPLES["claim"]]})
    assert claim.status_code == 200
    cross = client.post(
        path,
        json=EXAMPLES["claim"] if path.endswith("validate") else {"claims": [EXAMPLES["claim"]]},
        headers={"origin": YASGUI},
    )
    assert "access-control-allow-origin" not in cross.headers, "a page on another origin cannot read the verdict"


def test_cors_settings() -> None:
    billing = "https://billing.example"
    app = create_app(Settings(cors_origins=[YASGUI], cors_claims_origins=[billing]))
    client = TestClient(app)
    granted = _preflight(client, "/claims/validate", billing)
    assert granted.status_code == 200 and granted.headers["access-control-allow-origin"] == billing
    assert _preflight(client, "/claims/validate", YASGUI).status_code == 400, "the public origins are not the claims' ones"
    assert _preflight(client, "/sparql", YASGUI).headers["access-control-allow-origin"] == YASGUI
    assert _preflight(client, "/sparql", billing).status_code == 400
    closed = TestClient(create_app(Settings(cors_origins=[])))
    refused = _preflight(closed, "/sparql", YASGUI)
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


def test_cors_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINEKG_CORS_ORIGINS", f"{YASGUI}, http://localhost:3000")
    monkeypatch.setenv("SPINEKG_CORS_CLAIMS_ORIGINS", "")
    monkeypatch.setenv("SPINEKG_ALLOWED_HOSTS", "localhost,*.example.org")
    settings = Settings()
    assert settings.cors_origins == [YASGUI, "http://localhost:3000"]
    assert settings.cors_claims_origins == []
    assert settings.allowed_hosts == ["localhost", "*.example.org"]
    assert Settings.model_fields["cors_claims_origins"].default == [], "claims are closed to browsers unless configured"
    assert Settings.model_fields["forwarded_allow_ips"].default == [], "no proxy is trusted unless configured"


# -- docs without a CDN -------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_docs_load_nothing_from_outside(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.findall(r"https?://[^\s'\"<>]+", html), "the page names no outside address"
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    if page != "/docs/oauth2-redirect":
        assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), asset
        fetched = client.get(asset)
        assert fetched.status_code == 200 and fetched.content, asset
    if page == "/docs":
        assert any(a.endswith(".css") for a in assets)
        assert "validatorUrl" in html and '"validatorUrl": null' in html, "no validator badge calling out"


# -- OpenAPI: the real error body -----------------------------------------------------------------------


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_openapi_describes_the_real_error_body(client: TestClient) -> None:
    spec = _spec(client)
    ref = "#/components/schemas/ErrorBody"
    assert "HTTPValidationError" not in str(spec), "FastAPI's own 422 body is not what the API sends"
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]) == set(ErrorBody.model_fields)
    checked = 0
    for path, method, operation in _operations(spec):
        responses = operation["responses"]
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, f"{method} {path}"
        for status, response in responses.items():
            if status[0] in "45":
                assert response["content"]["application/json"]["schema"] == {"$ref": ref}, f"{method} {path} {status}"
                checked += 1
    assert checked >= 10


def _operation(spec: dict[str, Any], method: str, url: str) -> tuple[str, dict[str, Any]]:
    """The documented operation that answers ``method url``."""
    path = url.split("?")[0]
    for template, item in spec["paths"].items():
        if method.lower() in item and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return template, item[method.lower()]
    raise AssertionError(f"no documented operation for {method} {url}")


def _declared_model(operation: dict[str, Any]) -> Any:
    """The route's response_model, as the document names it: a model of api/schemas.py or a list of one."""
    schema = operation["responses"]["200"].get("content", {}).get("application/json", {}).get("schema")
    assert schema, "the operation declares no JSON answer"

    def resolve(node: dict[str, Any]) -> Any:
        if "$ref" in node:
            return getattr(api_schemas, node["$ref"].rsplit("/", 1)[1])
        if node.get("type") == "array":
            return list[resolve(node["items"])]
        raise AssertionError(f"not a model: {node}")

    return resolve(schema)


def _request(client: TestClient, case: dict[str, Any]) -> tuple[str, str, Any]:
    if "get" in case:
        return "GET", case["get"], client.get(case["get"])
    if "json" in case:
        return "POST", case["post"], client.post(case["post"], json=case["json"])
    return "POST", case["post"], client.post(case["post"], content=case["body"], headers={"content-type": "application/json"})


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_answers_match_their_declared_models(client: TestClient, case: dict[str, Any]) -> None:
    """Every case of tests/cases/api.yaml: a 2xx body validates against the route's response_model, with
    nothing the model leaves out; an error body validates against ErrorBody, under a status the OpenAPI
    document declares for that operation."""
    method, url, response = _request(client, case)
    template, operation = _operation(_spec(client), method, url)
    body = response.json()
    if response.status_code < 300:
        adapter: TypeAdapter[Any] = TypeAdapter(_declared_model(operation))
        value = adapter.validate_python(body)
        again = adapter.dump_python(value, mode="json", exclude_unset=True)
        assert again == body, f"{method} {template}: the answer holds what its model does not describe"
    else:
        TypeAdapter(ErrorBody).validate_python(body)
        declared = operation["responses"]
        assert str(response.status_code) in declared, f"{method} {template} does not declare {response.status_code}"


def test_every_get_route_with_a_model_has_a_case(client: TestClient) -> None:
    spec = _spec(client)

    def modelled(operation: dict[str, Any]) -> bool:
        schema = operation["responses"]["200"].get("content", {}).get("application/json", {}).get("schema", {})
        return "$ref" in schema or schema.get("type") == "array"

    with_model = {path for path, item in spec["paths"].items() if "get" in item and modelled(item["get"])}
    # the NCCI routes' cases need imported tables: tests/cases/ncci-api.yaml (test_ncci_api.py validates their models)
    ncci_cases = load_cases("ncci-api.yaml")
    covered = {_operation(spec, "GET", c["get"])[0] for c in (*CASES, *ncci_cases) if "get" in c and c["status"] < 300}
    assert {"/healthz", "/codes/{code}", "/vertebrae/{level}", "/queries/{name}"} <= with_model
    assert with_model <= covered, f"GET routes with no 2xx case in api.yaml: {sorted(with_model - covered)}"


# -- the documented examples ------------------------------------------------------------------------


def test_the_verdict_example_is_the_verdict_of_the_claim_example(client: TestClient) -> None:
    example = TypeAdapter(Verdict).validate_python(EXAMPLES["verdict"])
    response = client.post("/claims/validate", json=EXAMPLES["claim"])
    assert response.status_code == 200
    real = TypeAdapter(Verdict).validate_python(response.json())

    def shape(verdict: Verdict) -> Any:
        return (
            verdict.id,
            verdict.valid,
            verdict.date_of_service,
            [(f.rule, f.severity, f.lines) for f in verdict.findings],
            verdict.suggestion.model_dump() if verdict.suggestion else None,
        )

    assert shape(example) == shape(real), f"api/examples.json's verdict is not what the claim gets: {response.json()}"
    assert example.findings, "the example shows a finding, a fix and a suggestion"


def test_examples_are_in_the_openapi_document(client: TestClient) -> None:
    """The examples reach the document (FastAPI leaves out the null values when it writes it)."""

    def without_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_nulls(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [without_nulls(v) for v in value]
        return value

    schemas = _spec(client)["components"]["schemas"]
    assert schemas["Claim"]["examples"] == [without_nulls(EXAMPLES["claim"])]
    assert schemas["Verdict"]["examples"] == [without_nulls(EXAMPLES["verdict"])]


# -- proxy headers on a real server -----------------------------------------------------------------


def _serve(tmp_path: Path, name: str, **env: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    log = tmp_path / f"{name}.log"
    script = Path(sys.executable).with_name("spinekg")
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(script), "serve", "--port", str(port), "--log-level", "info"],
            cwd=REPO,
            env=dict(os.environ, SPINEKG_SPARQL_WORKERS="1", **env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return process, url, log
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("spinekg serve did not answer within 120 s")


def _logged_client(url: str, log: Path, path: str) -> str:
    request = urllib.request.Request(url + path, headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if f'"GET {path} HTTP/1.1" 200' in line:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {path}: {log.read_text()[-2000:]}")


@pytest.mark.slow
def test_forwarded_for_is_not_trusted_by_default_and_is_when_configured(tmp_path: Path) -> None:
    plain, url, log = _serve(tmp_path, "default")
    try:
        line = _logged_client(url, log, "/healthz?default")
        assert "203.0.113.7" not in line and "127.0.0.1:" in line, line
    finally:
        plain.send_signal(signal.SIGINT)
        plain.wait(15)
    proxied, url, log = _serve(tmp_path, "proxied", SPINEKG_FORWARDED_ALLOW_IPS="127.0.0.1")
    try:
        line = _logged_client(url, log, "/healthz?proxied")
        assert "203.0.113.7" in line, line
    finally:
        proxied.send_signal(signal.SIGINT)
        proxied.wait(15)


def test_readme_lists_every_setting() -> None:
    """README's settings table is what operators read: a new setting without a row there fails."""
    from spinekg.api.settings import Settings
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`SPINEKG_{name.upper()}`" not in readme]
    assert not missing, f"settings missing from README's table: {missing}"


@pytest.mark.slow
def test_an_oversized_header_is_refused_at_once(live_server: LiveServer) -> None:
    """h11 bounds the request head (SPINEKG_MAX_HEADER_BYTES): 8 MB of header is a 400, not seconds of parsing."""
    import contextlib
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(live_server.url)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8_000_000 + b"\r\n\r\n"
        with contextlib.suppress(OSError):  # the server may close the connection before the whole head is sent
            sock.sendall(head)
        reply = sock.recv(200)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply
    assert time.monotonic() - started < 3
    with urllib.request.urlopen(live_server.url + "/healthz", timeout=5) as response:
        assert response.status == 200
