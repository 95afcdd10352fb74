"""schemathesis against the app's own OpenAPI document: every operation, with a bearer token,
never answers 5xx and always answers what the document says (status, content type, headers, body).

The document is the one the app serves (built from the operation registry), loaded once at import
so that each operation is its own test; schemathesis' lazy `from_fixture` loader does not work
with pytest 9, so the cases are drawn with its Hypothesis strategies directly.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api import items, locations, movements, reservations, stock  # noqa: F401 - importing them registers the operations
from app.api.openapi import build_document

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SCHEMA = schemathesis.openapi.from_dict(build_document("test"))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture
def fuzz_token(app, factory):
    """Some stock to find and an admin token, so that every operation can succeed."""
    item = factory.item(sku="FUZZ-1", reorder_point=5)
    factory.stock(item, factory.location(), 1000)
    return factory.token(factory.user(role="admin"))


def test_document_served_is_the_one_fuzzed(client):
    assert client.get("/api/v1/openapi.json").get_json() == build_document("dev")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(data=st.data())
def test_operation_conforms(operation, app, fuzz_token, data):
    case = data.draw(operation.as_strategy())
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {fuzz_token}"}, checks=CHECKS)
