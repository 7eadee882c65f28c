"""The catalog's staff screens: every write goes through the services, audited and announced."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from audit.models import AuditLog
from catalog.models import Category, Product
from catalog.services import category_create
from pms_backend.events.models import Event

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/catalog/product/"
CATEGORIES = "/admin/catalog/category/"


@pytest.fixture
def tree(system_actor):
    """Apparel / Men / Shirts, plus a second root."""
    apparel = category_create(actor=system_actor, name="Apparel")
    men = category_create(actor=system_actor, name="Men", parent=apparel)
    shirts = category_create(actor=system_actor, name="Shirts", parent=men)
    home = category_create(actor=system_actor, name="Home")
    return {"apparel": apparel, "men": men, "shirts": shirts, "home": home}


def product_form(product: Product, **overrides) -> dict[str, str]:
    """Return what the change form posts for ``product`` as it stands, with ``overrides``."""
    data = {
        "sku": product.sku,
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "price": str(product.price),
        "currency": product.currency,
        "category": str(product.category_id or ""),
        "attributes": json.dumps(product.attributes),
    }
    data.update({k: str(v) for k, v in overrides.items()})
    return data


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def entries_for(obj, action: str | None = None):
    qs = AuditLog.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
    return qs.filter(action=action) if action else qs


# --- Categories --------------------------------------------------------------------------


def test_category_changelist_shows_full_paths(admin_client, tree):
    response = admin_client.get(CATEGORIES)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Apparel / Men / Shirts" in html
    assert "Apparel / Men<" in html or "Apparel / Men</" in html
    assert ">Home<" in html


def test_creating_a_category_in_the_admin_is_audited_and_announced(admin_client, staff_user, tree):
    events_before = Event.objects.filter(type="category.updated").count()

    response = admin_client.post(
        f"{CATEGORIES}add/",
        {
            "name": "Socks",
            "slug": "socks",
            "parent": tree["men"].pk,
            "position": "3",
            "is_active": "on",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    socks = Category.objects.get(slug="socks")
    assert socks.parent == tree["men"]
    assert socks.position == 3
    assert socks.is_active
    entry = entries_for(socks, "category.created").get()
    assert entry.actor_type == "user"
    assert entry.actor_id == str(staff_user.pk)
    assert entry.changes["name"] == {"before": None, "after": "Socks"}
    assert Event.objects.filter(type="category.updated").count() == events_before + 1
    event = Event.objects.filter(type="category.updated").latest("id")
    assert event.data["id"] == socks.pk


def test_a_parent_below_the_category_is_refused_and_nothing_is_saved(admin_client, tree):
    apparel = tree["apparel"]
    audit_before = AuditLog.objects.count()
    events_before = Event.objects.count()

    response = admin_client.post(
        f"{CATEGORIES}{apparel.pk}/change/",
        {"name": "Apparel", "slug": apparel.slug, "parent": tree["shirts"].pk, "position": "0"},
    )

    assert response.status_code == 200  # the form again, with its error
    errors = response.context["adminform"].form.errors
    assert "parent" in errors
    assert "cannot become its own ancestor" in " ".join(errors["parent"])
    apparel.refresh_from_db()
    assert apparel.parent is None
    assert AuditLog.objects.count() == audit_before
    assert Event.objects.count() == events_before


def test_a_category_cannot_be_its_own_parent(admin_client, tree):
    men = tree["men"]

    response = admin_client.post(
        f"{CATEGORIES}{men.pk}/change/",
        {"name": "Men", "slug": men.slug, "parent": men.pk, "position": "0"},
    )

    assert response.status_code == 200
    assert "parent" in response.context["adminform"].form.errors
    men.refresh_from_db()
    assert men.parent == tree["apparel"]


def test_changing_a_category_in_the_admin_is_audited(admin_client, tree):
    home = tree["home"]

    response = admin_client.post(
        f"{CATEGORIES}{home.pk}/change/",
        {
            "name": "Home & Garden",
            "slug": home.slug,
            "parent": "",
            "position": "5",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    home.refresh_from_db()
    assert home.name == "Home & Garden"
    entry = entries_for(home, "category.updated").get()
    assert entry.actor_type == "user"
    assert entry.changes == {
        "name": {"before": "Home", "after": "Home & Garden"},
        "position": {"before": 0, "after": 5},
    }


def test_a_category_holding_products_cannot_be_deleted(admin_client, make_product, category):
    make_product(category=category)

    page = admin_client.get(f"{CATEGORIES}{category.pk}/delete/")
    assert page.status_code == 200
    assert "Cannot delete" in page.content.decode()

    response = admin_client.post(f"{CATEGORIES}{category.pk}/delete/", {"post": "yes"})

    assert response.status_code in (200, 403)
    assert Category.objects.filter(pk=category.pk).exists()
    assert not entries_for(category, "category.deleted").exists()


def test_a_category_holding_products_survives_the_bulk_delete_action(
    admin_client, make_product, category
):
    make_product(category=category)

    admin_client.post(
        CATEGORIES,
        {"action": "delete_selected", "_selected_action": [category.pk], "post": "yes"},
    )

    assert Category.objects.filter(pk=category.pk).exists()


def test_an_empty_category_is_deleted_through_the_service(admin_client, tree):
    home = tree["home"]

    response = admin_client.post(f"{CATEGORIES}{home.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Category.objects.filter(pk=home.pk).exists()
    entry = AuditLog.objects.get(action="category.deleted", object_id=str(home.pk))
    assert entry.actor_type == "user"
    assert Event.objects.filter(type="category.updated", data__deleted=True).exists()


# --- Products: add and change -------------------------------------------------------------


def test_creating_a_product_in_the_admin_is_audited_and_announced(
    admin_client, staff_user, category
):
    response = admin_client.post(
        f"{PRODUCTS}add/",
        {
            "sku": "ADM-1",
            "name": "Admin Mug",
            "slug": "admin-mug",
            "description": "",
            "price": "12.50",
            "currency": "EUR",
            "category": category.pk,
            "attributes": "{}",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    product = Product.objects.get(sku="ADM-1")
    assert product.status == Product.Status.DRAFT
    assert product.price == Decimal("12.50")
    entry = entries_for(product, "product.created").get()
    assert entry.actor_type == "user"
    assert entry.actor_label == f"user:{staff_user.username}"
    assert entry.changes["sku"] == {"before": None, "after": "ADM-1"}
    event = Event.objects.get(type="product.created", subject=f"product:{product.pk}")
    assert event.data["sku"] == "ADM-1"


def test_a_duplicate_sku_in_the_add_form_is_refused(admin_client, make_product, category):
    existing = make_product()
    count = Product.objects.count()

    response = admin_client.post(
        f"{PRODUCTS}add/",
        {
            "sku": existing.sku,
            "name": "Copy",
            "slug": "copy",
            "price": "5",
            "currency": "EUR",
            "category": category.pk,
            "attributes": "{}",
        },
    )

    assert response.status_code == 200
    assert "sku" in response.context["adminform"].form.errors
    assert Product.objects.count() == count


def test_changing_the_price_audits_before_and_after(admin_client, make_product):
    product = make_product(price=Decimal("19.90"))

    response = admin_client.post(
        f"{PRODUCTS}{product.pk}/change/", product_form(product, price="24.00")
    )

    assert response.status_code == 302, response.content[:2000]
    product.refresh_from_db()
    assert product.price == Decimal("24.00")
    entry = entries_for(product, "product.updated").get()
    assert entry.actor_type == "user"
    assert entry.changes == {"price": {"before": "19.90", "after": "24.00"}}
    assert Event.objects.filter(type="product.updated", subject=f"product:{product.pk}").exists()


def test_saving_an_unchanged_product_records_nothing(admin_client, make_product):
    product = make_product()
    audit_before = AuditLog.objects.count()
    events_before = Event.objects.count()

    response = admin_client.post(f"{PRODUCTS}{product.pk}/change/", product_form(product))

    assert response.status_code == 302
    assert AuditLog.objects.count() == audit_before
    assert Event.objects.count() == events_before


def test_the_status_is_read_only_in_the_form(admin_client, make_product):
    product = make_product()

    page = admin_client.get(f"{PRODUCTS}{product.pk}/change/")
    assert page.status_code == 200
    assert "status" not in page.context["adminform"].form.fields
    assert 'name="status"' not in page.content.decode()

    response = admin_client.post(
        f"{PRODUCTS}{product.pk}/change/", {**product_form(product), "status": "published"}
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.status == Product.Status.DRAFT
    assert not entries_for(product, "product.published").exists()


def test_the_change_form_offers_only_the_transitions_the_status_allows(admin_client, make_product):
    draft = make_product()
    published = make_product("published")

    draft_page = admin_client.get(f"{PRODUCTS}{draft.pk}/change/").content.decode()
    published_page = admin_client.get(f"{PRODUCTS}{published.pk}/change/").content.decode()

    assert 'name="_fsm_transition_to"' in draft_page
    assert 'value="publish"' in draft_page
    assert 'value="archive"' not in draft_page
    assert 'value="unpublish"' in published_page
    assert 'value="archive"' in published_page
    assert 'value="publish"' not in published_page
    assert 'title="None"' not in draft_page  # each button explains itself on hover


# --- Products: transitions ----------------------------------------------------------------


def test_the_publish_button_publishes_through_the_service(admin_client, make_product):
    product = make_product()

    # The button is a submit of the whole change form with _fsm_transition_to=publish.
    response = admin_client.post(
        f"{PRODUCTS}{product.pk}/change/",
        {**product_form(product), "_fsm_transition_to": "publish"},
        follow=True,
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == f"{PRODUCTS}{product.pk}/change/"
    product.refresh_from_db()
    assert product.status == Product.Status.PUBLISHED
    assert product.published_at is not None
    entry = entries_for(product, "product.published").get()
    assert entry.actor_type == "user"
    assert entry.changes["status"] == {"before": "draft", "after": "published"}
    assert Event.objects.filter(type="product.published", subject=f"product:{product.pk}").exists()
    assert any("publish" in m for m in messages_of(response))


def test_the_button_and_a_field_change_apply_together(admin_client, make_product):
    product = make_product(price=Decimal("0"))

    # A clerk fixes the price and presses Publish in one go.
    response = admin_client.post(
        f"{PRODUCTS}{product.pk}/change/",
        {**product_form(product, price="9.99"), "_fsm_transition_to": "publish"},
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.price == Decimal("9.99")
    assert product.status == Product.Status.PUBLISHED


def test_a_refused_publish_names_the_price_and_leaves_the_product_draft(admin_client, make_product):
    product = make_product(price=Decimal("0"))
    events_before = Event.objects.count()

    response = admin_client.post(
        f"{PRODUCTS}{product.pk}/change/",
        {**product_form(product), "_fsm_transition_to": "publish"},
        follow=True,
    )

    assert response.status_code == 200
    errors = [m for m in response.context["messages"] if m.level_tag == "error"]
    assert errors, messages_of(response)
    assert "price" in str(errors[0])
    product.refresh_from_db()
    assert product.status == Product.Status.DRAFT
    assert product.published_at is None
    assert not entries_for(product, "product.published").exists()
    assert Event.objects.count() == events_before


def test_the_unpublish_and_archive_buttons_follow_the_machine(admin_client, make_product):
    product = make_product("published")

    admin_client.post(
        f"{PRODUCTS}{product.pk}/change/",
        {**product_form(product), "_fsm_transition_to": "archive"},
    )
    product.refresh_from_db()
    assert product.status == Product.Status.ARCHIVED

    # Archived → Published is not a move the machine has: refused, product unchanged.
    response = admin_client.post(
        f"{PRODUCTS}{product.pk}/change/",
        {**product_form(product), "_fsm_transition_to": "publish"},
        follow=True,
    )
    assert any("Cannot publish" in m for m in messages_of(response))
    product.refresh_from_db()
    assert product.status == Product.Status.ARCHIVED


def test_the_transition_form_url_does_not_bypass_the_service(admin_client, make_product):
    product = make_product(price=Decimal("0"))

    response = admin_client.post(f"{PRODUCTS}{product.pk}/transition/publish/")

    assert response.status_code in (400, 403, 404)
    product.refresh_from_db()
    assert product.status == Product.Status.DRAFT


# --- Products: bulk actions ----------------------------------------------------------------


def test_bulk_publish_moves_the_valid_and_names_each_refused_sku(admin_client, make_product):
    good = [make_product(sku=f"GOOD-{i}") for i in range(3)]
    free = make_product(sku="FREE-1", price=Decimal("0"))
    archived = make_product("archived", sku="OLD-1")

    response = admin_client.post(
        PRODUCTS,
        {
            "action": "publish_selected",
            "_selected_action": [p.pk for p in [*good, free, archived]],
        },
        follow=True,
    )

    assert response.status_code == 200
    statuses = dict(Product.objects.values_list("sku", "status"))
    assert [statuses[p.sku] for p in good] == ["published"] * 3
    assert statuses["FREE-1"] == "draft"
    assert statuses["OLD-1"] == "archived"
    texts = messages_of(response)
    assert "Published 3 products." in texts
    free_message = next(t for t in texts if t.startswith("FREE-1:"))
    assert "price" in free_message
    assert any(t.startswith("OLD-1:") for t in texts), texts
    published = AuditLog.objects.filter(action="product.published", actor_type="user")
    assert sorted(published.values_list("object_id", flat=True)) == sorted(str(p.pk) for p in good)


def test_bulk_archive_moves_published_and_refuses_drafts(admin_client, make_product):
    live = make_product("published", sku="LIVE-1")
    draft = make_product(sku="DRAFT-1")

    response = admin_client.post(
        PRODUCTS,
        {"action": "archive_selected", "_selected_action": [live.pk, draft.pk], "post": "yes"},
        follow=True,
    )

    live.refresh_from_db()
    draft.refresh_from_db()
    assert live.status == Product.Status.ARCHIVED
    assert draft.status == Product.Status.DRAFT
    texts = messages_of(response)
    assert any(t.startswith("DRAFT-1:") and "draft" in t for t in texts), texts
    assert Event.objects.filter(type="product.archived", subject=f"product:{live.pk}").exists()


def test_bulk_unpublish_and_restore(admin_client, make_product):
    live = make_product("published")
    old = make_product("archived")

    admin_client.post(PRODUCTS, {"action": "unpublish_selected", "_selected_action": [live.pk]})
    admin_client.post(PRODUCTS, {"action": "restore_selected", "_selected_action": [old.pk]})

    live.refresh_from_db()
    old.refresh_from_db()
    assert live.status == old.status == Product.Status.DRAFT
    assert entries_for(live, "product.unpublished").exists()
    assert entries_for(old, "product.restored").exists()


# --- Products: filters, search, deletion --------------------------------------------------


def _listed_skus(response) -> set[str]:
    return {p.sku for p in response.context["cl"].result_list}


def test_product_filters_and_search(admin_client, make_product, tree, category):
    a = make_product("published", sku="TEE-1", name="Linen Shirt", category=tree["shirts"])
    b = make_product(sku="TEE-2", name="Oxford Shirt", category=tree["shirts"])
    c = make_product("published", sku="MUG-1", name="Stoneware Mug", category=category)
    d = make_product("archived", sku="MUG-2", name="Enamel Mug", category=category)

    assert _listed_skus(admin_client.get(PRODUCTS)) == {a.sku, b.sku, c.sku, d.sku}
    assert _listed_skus(admin_client.get(PRODUCTS, {"status__exact": "published"})) == {
        a.sku,
        c.sku,
    }
    assert _listed_skus(admin_client.get(PRODUCTS, {"status__exact": "archived"})) == {d.sku}
    assert _listed_skus(admin_client.get(PRODUCTS, {"category__id__exact": tree["shirts"].pk})) == {
        a.sku,
        b.sku,
    }
    assert _listed_skus(
        admin_client.get(
            PRODUCTS, {"category__id__exact": category.pk, "status__exact": "published"}
        )
    ) == {c.sku}
    assert _listed_skus(admin_client.get(PRODUCTS, {"q": "MUG-2"})) == {d.sku}
    assert _listed_skus(admin_client.get(PRODUCTS, {"q": "shirt"})) == {a.sku, b.sku}
    assert _listed_skus(admin_client.get(PRODUCTS, {"q": "nothing-like-this"})) == set()


def test_products_cannot_be_deleted_in_the_admin(admin_client, make_product):
    product = make_product()

    assert admin_client.get(f"{PRODUCTS}{product.pk}/delete/").status_code == 403
    assert admin_client.post(f"{PRODUCTS}{product.pk}/delete/", {"post": "yes"}).status_code == 403
    changelist = admin_client.get(PRODUCTS)
    assert "delete_selected" not in changelist.content.decode()
    admin_client.post(
        PRODUCTS, {"action": "delete_selected", "_selected_action": [product.pk], "post": "yes"}
    )

    assert Product.objects.filter(pk=product.pk).exists()


# --- History ------------------------------------------------------------------------------


def test_the_history_link_shows_the_products_audit_entries(admin_client, make_product):
    product = make_product()
    other = make_product()
    admin_client.post(f"{PRODUCTS}{product.pk}/change/", product_form(product, price="30.00"))

    response = admin_client.get(f"{PRODUCTS}{product.pk}/history/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/audit/auditlog/?")
    assert "object_type=catalog.product" in response["Location"]
    assert f"object_id={product.pk}" in response["Location"]

    page = admin_client.get(response["Location"])
    assert page.status_code == 200
    listed = list(page.context["cl"].result_list)
    assert {e.action for e in listed} == {"product.created", "product.updated"}
    assert all(e.object_id == str(product.pk) for e in listed)
    assert not any(e.object_id == str(other.pk) for e in listed)


# --- Staff without every permission -------------------------------------------------------


def test_a_view_only_clerk_cannot_change_or_transition(make_staff, make_product):
    clerk = make_staff("catalog.view_product", "catalog.view_category")
    product = make_product()

    page = clerk.get(f"{PRODUCTS}{product.pk}/change/")
    assert page.status_code == 200
    assert 'value="publish"' not in page.content.decode()

    response = clerk.post(
        f"{PRODUCTS}{product.pk}/change/",
        {**product_form(product, price="1.00"), "_fsm_transition_to": "publish"},
    )
    assert response.status_code == 403
    clerk.post(PRODUCTS, {"action": "publish_selected", "_selected_action": [product.pk]})

    product.refresh_from_db()
    assert product.status == Product.Status.DRAFT
    assert product.price == Decimal("19.90")
    assert clerk.get(f"{PRODUCTS}add/").status_code == 403


def test_a_clerk_with_change_permission_publishes_as_themselves(make_staff, make_product):
    clerk = make_staff("catalog.view_product", "catalog.change_product", username="anna")
    product = make_product()

    clerk.post(PRODUCTS, {"action": "publish_selected", "_selected_action": [product.pk]})

    product.refresh_from_db()
    assert product.status == Product.Status.PUBLISHED
    entry = entries_for(product, "product.published").get()
    assert (entry.actor_type, entry.actor_label) == ("user", "user:anna")


def test_staff_without_catalog_permissions_sees_no_catalog(make_staff, make_product):
    outsider = make_staff()
    product = make_product()

    assert outsider.get(PRODUCTS).status_code == 403
    assert outsider.get(f"{PRODUCTS}{product.pk}/change/").status_code == 403
    assert outsider.get(CATEGORIES).status_code == 403
