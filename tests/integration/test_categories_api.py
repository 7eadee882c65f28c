"""The category tree over /api/v1/categories/."""

import pytest

from catalog.models import Category
from tests.integration.problem_json import assert_problem, leaves_no_trace

pytestmark = pytest.mark.django_db

CATEGORIES = "/api/v1/categories/"


def create(client, **fields) -> dict:
    response = client.post(CATEGORIES, fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def get(client, pk: int) -> dict:
    response = client.get(f"{CATEGORIES}{pk}/")
    assert response.status_code == 200, response.content
    return response.json()


def test_create_nested_tree_lists_parent_and_children(admin_api):
    root = create(admin_api, name="Home")
    kitchen = create(admin_api, name="Kitchen", parent=root["id"], position=2)
    garden = create(admin_api, name="Garden", parent=root["id"], position=1)
    knives = create(admin_api, name="Knives", parent=kitchen["id"])

    assert root["parent"] is None
    assert root["children"] == []
    assert kitchen["parent"] == root["id"]
    assert knives["parent"] == kitchen["id"]
    assert get(admin_api, root["id"])["children"] == [garden["id"], kitchen["id"]]
    assert get(admin_api, kitchen["id"])["children"] == [knives["id"]]
    assert get(admin_api, knives["id"])["children"] == []
    assert kitchen["slug"] == "kitchen"
    assert kitchen["is_active"] is True


def test_create_with_explicit_slug_and_duplicate_slug(admin_api):
    create(admin_api, name="Tools", slug="tools")

    with leaves_no_trace():
        response = admin_api.post(
            CATEGORIES, {"name": "Other tools", "slug": "tools"}, format="json"
        )

    body = assert_problem(response, 409, "duplicate_slug")
    assert "slug" in body["errors"]


def test_same_name_gets_a_distinct_slug(admin_api):
    first = create(admin_api, name="Sale")
    second = create(admin_api, name="Sale")

    assert first["slug"] != second["slug"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 121},
        {"name": "Ok", "parent": 999_999},
        {"name": "Ok", "position": -1},
        {"name": "Ok", "slug": "not a slug"},
        {"name": "Ok", "children": [1]},
        {"name": "Ok", "colour": "red"},
    ],
    ids=["empty", "blank", "long", "no-parent", "neg-pos", "bad-slug", "children", "unknown"],
)
def test_bad_category_input_is_400(admin_api, body):
    with leaves_no_trace():
        response = admin_api.post(CATEGORIES, body, format="json")

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"]


def test_storefront_cannot_write_categories(storefront, category):
    with leaves_no_trace():
        assert_problem(storefront.post(CATEGORIES, {"name": "X"}, format="json"), 403)
        assert_problem(
            storefront.patch(f"{CATEGORIES}{category.pk}/", {"name": "X"}, format="json"), 403
        )
        assert_problem(storefront.delete(f"{CATEGORIES}{category.pk}/"), 403)


def test_patch_moves_a_category_under_another(admin_api):
    a = create(admin_api, name="A")
    b = create(admin_api, name="B")

    response = admin_api.patch(f"{CATEGORIES}{b['id']}/", {"parent": a["id"]}, format="json")

    assert response.status_code == 200
    assert response.json()["parent"] == a["id"]
    assert get(admin_api, a["id"])["children"] == [b["id"]]


def test_patch_to_a_taken_slug_is_409(admin_api):
    create(admin_api, name="Tools", slug="tools")
    other = create(admin_api, name="Other")

    with leaves_no_trace():
        response = admin_api.patch(f"{CATEGORIES}{other['id']}/", {"slug": "tools"}, format="json")

    assert_problem(response, 409, "duplicate_slug")
    assert get(admin_api, other["id"])["slug"] == other["slug"]


def test_patch_that_changes_nothing_leaves_no_trace(admin_api):
    a = create(admin_api, name="Same")

    with leaves_no_trace():
        response = admin_api.patch(f"{CATEGORIES}{a['id']}/", {"name": "Same"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Same"


def test_patch_of_a_missing_category_is_404(admin_api):
    assert_problem(
        admin_api.patch(f"{CATEGORIES}999999/", {"name": "x"}, format="json"), 404, "not_found"
    )


def test_patch_to_root(admin_api):
    a = create(admin_api, name="A")
    b = create(admin_api, name="B", parent=a["id"])

    response = admin_api.patch(f"{CATEGORIES}{b['id']}/", {"parent": None}, format="json")

    assert response.json()["parent"] is None
    assert get(admin_api, a["id"])["children"] == []


# --- Cycles -----------------------------------------------------------------------------


def test_category_cannot_be_its_own_parent(admin_api):
    a = create(admin_api, name="A")

    with leaves_no_trace():
        response = admin_api.patch(f"{CATEGORIES}{a['id']}/", {"parent": a["id"]}, format="json")

    body = assert_problem(response, 400, "category_cycle")
    assert "parent" in body["errors"]
    assert Category.objects.get(pk=a["id"]).parent_id is None


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_category_cannot_move_below_its_own_descendant(admin_api, depth):
    root = create(admin_api, name="Root")
    chain = [root]
    for n in range(depth):
        chain.append(create(admin_api, name=f"Level {n + 1}", parent=chain[-1]["id"]))
    deepest = chain[-1]

    with leaves_no_trace():
        response = admin_api.patch(
            f"{CATEGORIES}{root['id']}/", {"parent": deepest["id"]}, format="json"
        )

    assert_problem(response, 400, "category_cycle")
    assert Category.objects.get(pk=root["id"]).parent_id is None
    assert get(admin_api, deepest["id"])["parent"] == chain[-2]["id"]


def test_moving_into_a_sibling_branch_is_not_a_cycle(admin_api):
    root = create(admin_api, name="Root")
    left = create(admin_api, name="Left", parent=root["id"])
    right = create(admin_api, name="Right", parent=root["id"])

    response = admin_api.patch(f"{CATEGORIES}{left['id']}/", {"parent": right["id"]}, format="json")

    assert response.status_code == 200
    assert response.json()["parent"] == right["id"]


# --- Deleting ---------------------------------------------------------------------------


def test_delete_empty_category_is_204(admin_api):
    a = create(admin_api, name="Empty")

    response = admin_api.delete(f"{CATEGORIES}{a['id']}/")

    assert response.status_code == 204
    assert not Category.objects.filter(pk=a["id"]).exists()
    assert_problem(admin_api.get(f"{CATEGORIES}{a['id']}/"), 404)


def test_delete_category_holding_products_is_409(admin_api, make_product, category):
    make_product("draft")

    with leaves_no_trace():
        response = admin_api.delete(f"{CATEGORIES}{category.pk}/")

    body = assert_problem(response, 409, "category_in_use")
    assert body["detail"].endswith("still holds 1 product; move it first.")
    assert Category.objects.filter(pk=category.pk).exists()


def test_delete_category_holding_only_archived_products_is_still_409(
    admin_api, make_product, category
):
    make_product("archived")

    with leaves_no_trace():
        assert_problem(admin_api.delete(f"{CATEGORIES}{category.pk}/"), 409, "category_in_use")


def test_delete_category_with_children_is_409(admin_api):
    parent = create(admin_api, name="Parent")
    create(admin_api, name="Child", parent=parent["id"])

    with leaves_no_trace():
        response = admin_api.delete(f"{CATEGORIES}{parent['id']}/")

    assert_problem(response, 409, "category_has_children")
    assert Category.objects.filter(pk=parent["id"]).exists()


def test_delete_missing_category_is_404(admin_api):
    assert_problem(admin_api.delete(f"{CATEGORIES}999999/"), 404)


def test_category_can_be_deleted_once_emptied(admin_api, make_product, category):
    product = make_product("draft")
    other = create(admin_api, name="Other")
    assert admin_api.delete(f"{CATEGORIES}{category.pk}/").status_code == 409

    admin_api.patch(f"/api/v1/products/{product.pk}/", {"category": other["id"]}, format="json")

    assert admin_api.delete(f"{CATEGORIES}{category.pk}/").status_code == 204


# --- Who sees what ----------------------------------------------------------------------


def test_storefront_sees_only_active_categories(storefront, admin_api):
    root = create(admin_api, name="Root")
    active = create(admin_api, name="Active", parent=root["id"])
    hidden = create(admin_api, name="Hidden", parent=root["id"], is_active=False)

    body = storefront.get(CATEGORIES).json()

    ids = [c["id"] for c in body["results"]]
    assert sorted(ids) == sorted([root["id"], active["id"]])
    by_id = {c["id"]: c for c in body["results"]}
    assert by_id[root["id"]]["children"] == [active["id"]]
    assert_problem(storefront.get(f"{CATEGORIES}{hidden['id']}/"), 404)
    # An admin key sees the inactive one and lists it as a child.
    assert get(admin_api, root["id"])["children"] == sorted([active["id"], hidden["id"]])
    assert admin_api.get(CATEGORIES).json()["count"] == 3


def test_storefront_cannot_widen_its_view_with_is_active_filter(storefront, admin_api):
    create(admin_api, name="Hidden", is_active=False)

    assert storefront.get(CATEGORIES, {"is_active": "false"}).json()["count"] == 0


def test_parent_filter(admin_api):
    root = create(admin_api, name="Root")
    child = create(admin_api, name="Child", parent=root["id"])
    create(admin_api, name="Other root")

    body = admin_api.get(CATEGORIES, {"parent": root["id"]}).json()

    assert [c["id"] for c in body["results"]] == [child["id"]]


def test_category_list_pagination_shape(storefront, admin_api):
    for n in range(3):
        create(admin_api, name=f"C{n}")

    body = storefront.get(CATEGORIES, {"page_size": 2}).json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert_problem(storefront.get(CATEGORIES, {"page_size": 101}), 400)


def test_deactivating_a_category_hides_it_from_the_storefront(
    storefront, admin_api, django_capture_on_commit_callbacks
):
    cat = create(admin_api, name="Seasonal")
    assert storefront.get(f"{CATEGORIES}{cat['id']}/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        admin_api.patch(f"{CATEGORIES}{cat['id']}/", {"is_active": False}, format="json")

    assert_problem(storefront.get(f"{CATEGORIES}{cat['id']}/"), 404)
    assert storefront.get(CATEGORIES).json()["count"] == 0
