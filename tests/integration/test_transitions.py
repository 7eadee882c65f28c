"""The product status machine over POST /api/v1/products/{id}/<transition>/."""

from decimal import Decimal

import pytest

from audit.models import AuditLog
from catalog.models import Product
from pms_backend.events.models import Event
from tests.integration.problem_json import assert_problem, leaves_no_trace

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"

ALLOWED = {
    ("draft", "publish"): "published",
    ("published", "unpublish"): "draft",
    ("published", "archive"): "archived",
    ("archived", "restore"): "draft",
}
STATUSES = ["draft", "published", "archived"]
TRANSITIONS = ["publish", "unpublish", "archive", "restore"]
FORBIDDEN = [
    (status, name) for status in STATUSES for name in TRANSITIONS if (status, name) not in ALLOWED
]


def db_state(product: Product) -> tuple:
    product.refresh_from_db()
    return (product.status, product.published_at, product.updated_at)


@pytest.mark.parametrize(("status", "transition"), list(ALLOWED))
def test_allowed_transition_moves_the_product(admin_api, make_product, status, transition):
    product = make_product(status)

    response = admin_api.post(f"{PRODUCTS}{product.pk}/{transition}/")

    assert response.status_code == 200, response.content
    expected = ALLOWED[(status, transition)]
    assert response.json()["status"] == expected
    product.refresh_from_db()
    assert product.status == expected
    assert admin_api.get(f"{PRODUCTS}{product.pk}/").json()["status"] == expected


@pytest.mark.parametrize(("status", "transition"), FORBIDDEN)
def test_forbidden_transition_is_409_and_changes_nothing(
    admin_api, make_product, status, transition
):
    product = make_product(status)
    before = db_state(product)

    with leaves_no_trace():
        response = admin_api.post(f"{PRODUCTS}{product.pk}/{transition}/")

    body = assert_problem(response, 409, "invalid_transition")
    assert status in body["detail"]
    assert db_state(product) == before


def test_the_forbidden_set_is_what_the_contract_says():
    # Guard against the parametrisation above silently shrinking.
    assert len(FORBIDDEN) == 8
    assert ("draft", "archive") in FORBIDDEN
    assert ("archived", "publish") in FORBIDDEN
    assert ("published", "publish") in FORBIDDEN


def test_full_lifecycle_round_trip(
    admin_api, storefront, make_product, django_capture_on_commit_callbacks
):
    product = make_product("draft")
    url = f"{PRODUCTS}{product.pk}/"

    def visible() -> bool:
        return storefront.get(url).status_code == 200

    def move(transition: str) -> str:
        # Run the after-commit hooks, as a real commit would: the storefront cache is
        # dropped then, and the storefront must see each move at once.
        with django_capture_on_commit_callbacks(execute=True):
            return admin_api.post(f"{url}{transition}/").json()["status"]

    assert not visible()
    assert move("publish") == "published"
    assert visible()
    assert move("archive") == "archived"
    assert not visible()
    assert move("restore") == "draft"
    assert not visible()
    assert move("publish") == "published"
    assert visible()
    assert move("unpublish") == "draft"
    assert not visible()


def test_publish_sets_published_at_and_unpublish_clears_it(admin_api, make_product):
    product = make_product("draft")
    url = f"{PRODUCTS}{product.pk}/"

    published = admin_api.post(f"{url}publish/").json()
    assert published["published_at"] is not None
    product.refresh_from_db()
    assert product.published_at is not None

    unpublished = admin_api.post(f"{url}unpublish/").json()
    assert unpublished["published_at"] is None
    product.refresh_from_db()
    assert product.published_at is None


def test_archive_keeps_and_restore_clears_published_at(admin_api, make_product):
    product = make_product("published")
    published_at = admin_api.get(f"{PRODUCTS}{product.pk}/").json()["published_at"]

    archived = admin_api.post(f"{PRODUCTS}{product.pk}/archive/").json()
    assert archived["published_at"] == published_at

    restored = admin_api.post(f"{PRODUCTS}{product.pk}/restore/").json()
    assert restored["published_at"] is None


def test_transition_of_a_missing_product_is_404(admin_api):
    assert_problem(admin_api.post(f"{PRODUCTS}987654/publish/"), 404, "not_found")


def test_transition_needs_catalog_write(storefront, client_for, make_product):
    product = make_product("draft")
    reader = client_for("catalog:read")

    with leaves_no_trace():
        assert_problem(storefront.post(f"{PRODUCTS}{product.pk}/publish/"), 403)
        assert_problem(reader.post(f"{PRODUCTS}{product.pk}/publish/"), 403)

    product.refresh_from_db()
    assert product.status == "draft"


def test_transitions_refuse_get(admin_api, make_product):
    product = make_product("draft")

    assert_problem(admin_api.get(f"{PRODUCTS}{product.pk}/publish/"), 405)
    product.refresh_from_db()
    assert product.status == "draft"


# --- Publish validation -------------------------------------------------------------------


def _publish_refused(admin_api, product) -> dict:
    before = db_state(product)
    with leaves_no_trace():
        response = admin_api.post(f"{PRODUCTS}{product.pk}/publish/")
    body = assert_problem(response, 400, "publish_requirements_unmet")
    assert db_state(product) == before
    assert product.status == "draft"
    assert product.published_at is None
    return body


def test_publish_refuses_a_zero_price(admin_api, make_product):
    product = make_product("draft", price=Decimal("0.00"))

    body = _publish_refused(admin_api, product)

    assert set(body["errors"]) == {"price"}
    assert body["errors"]["price"]


def test_publish_refuses_a_product_without_category(admin_api, make_product):
    product = make_product("draft", category=None)

    body = _publish_refused(admin_api, product)

    assert set(body["errors"]) == {"category"}


def test_publish_refuses_an_inactive_category(admin_api, make_product, system_actor):
    from catalog.services import category_create

    retired = category_create(actor=system_actor, name="Retired", is_active=False)
    product = make_product("draft", category=retired)

    body = _publish_refused(admin_api, product)

    assert set(body["errors"]) == {"category"}
    assert "Retired" in body["errors"]["category"][0]


def test_publish_names_every_missing_requirement_at_once(admin_api, make_product):
    product = make_product("draft", price=Decimal("0"), category=None)

    body = _publish_refused(admin_api, product)

    assert set(body["errors"]) == {"price", "category"}
    assert "price" in body["detail"]
    assert "category" in body["detail"]


def test_publish_succeeds_once_the_problems_are_fixed(admin_api, make_product, category):
    product = make_product("draft", price=Decimal("0"), category=None)
    _publish_refused(admin_api, product)

    admin_api.patch(
        f"{PRODUCTS}{product.pk}/", {"price": "4.00", "category": category.pk}, format="json"
    )
    response = admin_api.post(f"{PRODUCTS}{product.pk}/publish/")

    assert response.status_code == 200
    assert response.json()["status"] == "published"


@pytest.mark.parametrize(
    "change",
    [{"price": "0.00"}, {"category": None}],
    ids=["zero-price", "no-category"],
)
def test_a_published_product_cannot_be_edited_into_an_unpublishable_state(
    admin_api, make_product, change
):
    product = make_product("published")
    before = (product.price, product.category_id)

    with leaves_no_trace():
        response = admin_api.patch(f"{PRODUCTS}{product.pk}/", change, format="json")

    body = assert_problem(response, 400, "publish_requirements_unmet")
    assert set(body["errors"]) == set(change)
    product.refresh_from_db()
    assert (product.price, product.category_id) == before
    assert product.status == "published"


def test_a_published_product_cannot_move_to_an_inactive_category(
    admin_api, make_product, system_actor
):
    from catalog.services import category_create

    retired = category_create(actor=system_actor, name="Retired", is_active=False)
    product = make_product("published")

    response = admin_api.patch(f"{PRODUCTS}{product.pk}/", {"category": retired.pk}, format="json")

    assert_problem(response, 400, "publish_requirements_unmet")
    product.refresh_from_db()
    assert product.category_id != retired.pk


def test_each_successful_transition_leaves_one_audit_entry_and_one_event(admin_api, make_product):
    product = make_product("draft")
    audit_before = AuditLog.objects.count()
    events_before = Event.objects.count()

    admin_api.post(f"{PRODUCTS}{product.pk}/publish/")
    admin_api.post(f"{PRODUCTS}{product.pk}/archive/")

    assert AuditLog.objects.count() == audit_before + 2
    assert Event.objects.count() == events_before + 2
