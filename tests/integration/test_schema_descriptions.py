"""The OpenAPI schema is written for a storefront developer: no internal docstring of the
serializer plumbing shows as a description (it once described nine request bodies)."""

from __future__ import annotations

import inspect
import json

import pytest
import yaml
from django.test import Client

from pms_backend.api import serializers as plumbing


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def _descriptions(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield value
            else:
                yield from _descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value)


def test_no_plumbing_docstring_describes_anything(schema):
    internal = {
        inspect.cleandoc(cls.__doc__)
        for _, cls in inspect.getmembers(plumbing, inspect.isclass)
        if cls.__module__ == plumbing.__name__ and cls.__doc__
    }
    assert internal, "the plumbing module's classes have docstrings to look for"

    found = set(_descriptions(schema)) & internal

    assert not found
    assert "Refuse write bodies" not in json.dumps(schema)


def test_request_bodies_without_their_own_words_have_no_description(schema):
    components = schema["components"]["schemas"]

    for name in ("CustomerRequest", "ShippingAddressRequest", "OrderLineRequest"):
        assert "description" not in components[name], name
    # A serializer's own docstring still describes it.
    assert components["OrderCreateRequest"]["description"].startswith("A new order.")
