"""Probes for operators and the public OpenAPI schema."""

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db


def test_live_is_200_without_credentials():
    response = Client().get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_ready_checks_database_cache_and_broker():
    response = Client().get("/health/ready")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    for name, check in body["checks"].items():
        assert check["status"] == "ok", (name, check)
        assert check["ms"] >= 0


def test_ready_is_503_naming_the_failed_check(monkeypatch):
    from pms_backend.monitoring import views

    def broken():
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(views, "_check_cache", broken)

    response = Client().get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["cache"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"


def test_health_probes_refuse_writes():
    assert Client().post("/health/live").status_code == 405


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/")
    assert response.status_code == 200, response.content[:500]
    return yaml.safe_load(response.content)


def test_schema_is_public_and_lists_the_product_endpoints(schema):
    paths = schema["paths"]
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/v1/products/",
        "/api/v1/products/{id}/",
        "/api/v1/products/{id}/publish/",
        "/api/v1/products/{id}/unpublish/",
        "/api/v1/products/{id}/archive/",
        "/api/v1/products/{id}/restore/",
        "/api/v1/categories/",
        "/api/v1/categories/{id}/",
        "/api/v1/audit/",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/products/"]) >= {"get", "post"}
    assert "patch" in paths["/api/v1/products/{id}/"]
    assert "put" not in paths["/api/v1/products/{id}/"]
    assert "delete" not in paths["/api/v1/products/{id}/"]
    assert "delete" in paths["/api/v1/categories/{id}/"]


def test_schema_documents_product_list_parameters(schema):
    names = {p["name"] for p in schema["paths"]["/api/v1/products/"]["get"]["parameters"]}

    assert {"category", "status", "search", "ordering", "page", "page_size"} <= names


def test_schema_describes_the_write_body_without_read_only_status(schema):
    components = schema["components"]["schemas"]
    request_body = schema["paths"]["/api/v1/products/"]["post"]["requestBody"]
    ref = request_body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = components[ref]["properties"]

    assert {"sku", "name", "price"} <= set(properties)
    assert "status" not in properties
    assert set(components[ref]["required"]) >= {"sku", "name", "price"}


def test_schema_names_the_api_key_security_scheme(schema):
    schemes = schema["components"]["securitySchemes"]

    assert schemes["ApiKeyAuth"]["in"] == "header"
    assert schemes["ApiKeyAuth"]["name"] == "Authorization"


def test_docs_page_is_public():
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_schema_generates_without_warnings_and_validates(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert "/api/v1/products/" in yaml.safe_load(target.read_text())["paths"]
