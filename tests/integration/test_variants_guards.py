"""Fixes to the variant services (catalog/variants.py) found while building their import:
each test failed before its fix."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from catalog.models import Product
from catalog.variants import (
    product_set_options,
    variant_create,
    variant_update,
    variants_generate,
)
from pms_backend.errors import InvalidInput

pytestmark = pytest.mark.django_db


@pytest.fixture
def tee(make_product, system_actor):
    product = make_product("draft", sku="TEE", name="Tee")
    product_set_options(
        actor=system_actor,
        product_id=product.pk,
        options=[{"name": "Size", "values": ["S", "M", "L"]}],
    )
    return product


def test_generating_too_many_combinations_is_refused_before_making_any(make_product, system_actor):
    product = make_product("draft", sku="GRID")
    values = [str(n) for n in range(11)]
    product_set_options(
        actor=system_actor,
        product_id=product.pk,
        options=[{"name": name, "values": values} for name in ("A", "B", "C")],
    )

    with CaptureQueriesContext(connection) as queries, pytest.raises(InvalidInput) as refused:
        variants_generate(actor=system_actor, product_id=product.pk)

    assert "1,331 variants" in refused.value.detail
    # Before: one query per combination (1,331 here; a million for 3 x 100 values), then
    # the refusal.
    assert len(queries) < 10
    assert not Product.objects.filter(parent=product).exists()


def test_track_stock_must_be_a_boolean_when_a_variant_is_made(tee, system_actor):
    with pytest.raises(InvalidInput) as refused:
        variant_create(
            actor=system_actor,
            product_id=tee.pk,
            options={"Size": "S"},
            sku="TEE-S",
            track_stock="false",  # bool("false") is True: it was stored as tracked
        )

    assert refused.value.errors == {"track_stock": ["Not a boolean."]}
    assert not Product.objects.filter(sku="TEE-S").exists()


@pytest.mark.django_db(transaction=True)
def test_changing_a_variant_waits_for_its_product_whose_options_may_be_changing(tee, system_actor):
    """variant_update locks the product as product_set_options does: else an option value
    could be removed while a variant concurrently took it (a variant with an undeclared
    value)."""
    variant = variant_create(
        actor=system_actor, product_id=tee.pk, options={"Size": "S"}, sku="TEE-S"
    )
    locked, release = threading.Event(), threading.Event()

    def hold_the_product() -> None:
        try:
            with transaction.atomic():
                Product.objects.select_for_update().get(pk=tee.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_product)
    holder.start()
    try:
        assert locked.wait(10)
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            variant_update(
                actor=system_actor, variant_id=variant.pk, data={"options": {"Size": "L"}}
            )
    finally:
        release.set()
        holder.join(10)
    variant.refresh_from_db()
    assert variant.option_values == {"Size": "S"}
