"""The OpenAPI document and the docs page: generated from the models, complete, served offline."""

from __future__ import annotations

from pathlib import Path

from app.api.openapi import OPERATIONS
from app.api.schemas import IssueStock

ROOT = Path(__file__).resolve().parents[3]


def test_document_is_openapi_31_and_lists_every_route(client, app):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    routed = {
        (
            rule.rule.removeprefix("/api/v1")
            .replace("<int:", "{")
            .replace("<path:", "{")
            .replace("<", "{")
            .replace(">", "}"),
            method.lower(),
        )
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi_document"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routed
    assert len(OPERATIONS) >= len(routed)


def test_request_schema_is_the_validating_model(client):
    document = client.get("/api/v1/openapi.json").get_json()
    issue = document["paths"]["/stock/issue"]["post"]
    ref = issue["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(schema["properties"]) == set(IssueStock.model_fields)
    assert set(schema["required"]) == {"sku", "location", "quantity"}
    assert schema["additionalProperties"] is False
    assert {"201", "401", "403", "404", "409", "413", "415", "422", "429"} <= set(issue["responses"])
    assert "WWW-Authenticate" in issue["responses"]["401"]["headers"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in issue["parameters"])
    assert issue["security"] == [{"bearerAuth": []}]


def test_docs_page_uses_vendored_assets(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in html
    assert "/api/v1/openapi.json" in html
    assert "http" not in html.replace("http-equiv", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static/vendor/swagger-ui-5.35.0/{asset}").status_code == 200
    assert client.get("/api/docs/static/docs.js").status_code == 200
    assert "Apache License" in (ROOT / "static/vendor/swagger-ui-5.35.0/LICENSE").read_text()
