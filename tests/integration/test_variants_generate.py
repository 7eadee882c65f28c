"""Making a product's variants in one step (catalog.variants.variants_generate): values
that slugify alike, and more combinations than a product may have."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actors import Actor
from catalog.models import Product
from catalog.variants import MAX_VARIANTS, product_set_options, variants_generate
from pms_backend.errors import InvalidInput

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


def test_values_that_differ_only_in_punctuation_make_distinct_variants(make_product):
    # "A+" and "A-" both slugify to "a" (and make the SKU part "A"): one batch must not
    # give two variants the same slug (that was an IntegrityError, a 500).
    tee = make_product(sku="TEE", name="Tee")
    product_set_options(
        actor=ACTOR, product_id=tee.pk, options=[{"name": "Grade", "values": ["A+", "A-"]}]
    )

    made = variants_generate(actor=ACTOR, product_id=tee.pk)

    assert [v.sku for v in made] == ["TEE-A", "TEE-A-2"]
    assert len({v.slug for v in made}) == 2
    assert Product.objects.filter(parent=tee).count() == 2


def test_more_combinations_than_a_product_may_have_are_refused_before_any_is_made(
    make_product,
):
    # 3 options of 100 values: a million combinations. They were all built, and each one
    # queried twice (its SKU, its slug), before the count was checked: minutes under the
    # product's lock.
    big = make_product(sku="BIG", name="Big")
    product_set_options(
        actor=ACTOR,
        product_id=big.pk,
        options=[{"name": n, "values": [f"v{i}" for i in range(100)]} for n in "ABC"],
    )
    with CaptureQueriesContext(connection) as queries, pytest.raises(InvalidInput) as refused:
        variants_generate(actor=ACTOR, product_id=big.pk)

    assert len(queries) <= 10, [q["sql"] for q in queries]  # counted first, none looked up
    assert f"at most {MAX_VARIANTS:,} variants" in refused.value.detail
    assert not Product.objects.filter(parent=big).exists()


def test_more_named_combinations_than_a_product_may_have_are_refused(make_product):
    big = make_product(sku="BIG", name="Big")
    product_set_options(
        actor=ACTOR,
        product_id=big.pk,
        options=[{"name": n, "values": [f"v{i}" for i in range(40)]} for n in "AB"],
    )
    named = [{"A": f"v{a}", "B": f"v{b}"} for a in range(40) for b in range(40)]

    with pytest.raises(InvalidInput):
        variants_generate(actor=ACTOR, product_id=big.pk, combinations=named)

    assert not Product.objects.filter(parent=big).exists()
