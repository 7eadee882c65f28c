"""The operators' manage.py commands: API keys and demo data.

In-process (``call_command``) for what they do to the database; as real processes where
what an operator sees matters: exit codes, stdout versus stderr, no tracebacks.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditLog
from catalog import demo
from catalog.models import Category, Product
from catalog.selectors import category_paths
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.selectors import api_key_parse_prefix

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def run(*args: str) -> tuple[str, str]:
    """Run a command in-process; return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def api(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


@pytest.fixture(scope="module")
def manage(tmp_path_factory):
    """Return a function running ``manage.py`` as its own process on a migrated SQLite file."""
    folder = tmp_path_factory.mktemp("manage")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(folder)),
        "DJANGO_DEBUG": "true",
        "DJANGO_SECRET_KEY": "",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "CELERY_BROKER_DIR": str(folder / "broker"),
        "LOG_LEVEL": "WARNING",
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    migrated = manage("migrate", "--noinput", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    return manage


# --- generate_api_key ---------------------------------------------------------------------


def test_generate_api_key_prints_the_key_alone_on_the_last_line(make_product):
    make_product("published")

    out, err = run("generate_api_key", "--name", "Shop EU", "--scopes", "storefront")

    lines = out.splitlines()
    raw = lines[-1]
    assert raw.startswith("pms_")
    assert raw == raw.strip() and " " not in raw
    prefix = api_key_parse_prefix(raw)
    assert prefix is not None
    key = ApiKey.objects.get(prefix=prefix)
    assert key.name == "Shop EU"
    assert key.scopes == ["catalog:read", "inventory:read", "orders:read", "orders:write"]
    assert f"prefix {prefix}" in err
    assert raw not in err
    response = api(raw).get("/api/v1/products/")
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_generate_api_key_takes_single_scopes_and_an_expiry():
    out, _ = run(
        "generate_api_key",
        "--name",
        "auditor",
        "--scopes",
        "audit:read, catalog:read",
        "--expires-in-days",
        "7",
    )

    key = ApiKey.objects.get(prefix=api_key_parse_prefix(out.splitlines()[-1]))
    assert key.scopes == ["audit:read", "catalog:read"]
    assert timedelta(days=6, hours=23) < key.expires_at - timezone.now() <= timedelta(days=7)
    entry = AuditLog.objects.get(action="api_key.created", object_id=str(key.pk))
    assert (entry.actor_type, entry.actor_id) == ("system", "generate_api_key")


def test_an_admin_key_from_the_command_can_publish(make_product):
    product = make_product()
    out, _ = run("generate_api_key", "--name", "ops", "--scopes", "admin")

    response = api(out.splitlines()[-1]).post(f"/api/v1/products/{product.pk}/publish/")

    assert response.status_code == 200, response.content
    product.refresh_from_db()
    assert product.status == Product.Status.PUBLISHED


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ("bogus", "unknown scope: bogus;"),
        ("catalog:read,catalog:wirte", "unknown scope: catalog:wirte;"),
        ("catalog:reed,orders:rite", "unknown scopes: catalog:reed, orders:rite;"),
        ("", "at least one scope is required"),
    ],
)
def test_generate_api_key_refuses_bad_scopes(scopes, message):
    with pytest.raises(CommandError) as caught:
        run("generate_api_key", "--name", "x", "--scopes", scopes)

    assert message in str(caught.value)
    if scopes:
        assert "catalog:read" in str(caught.value)  # it lists what is known
    assert not ApiKey.objects.exists()


def test_generate_api_key_refuses_a_bad_expiry():
    with pytest.raises(CommandError, match="--expires-in-days"):
        run("generate_api_key", "--name", "x", "--scopes", "storefront", "--expires-in-days", "0")
    assert not ApiKey.objects.exists()


def test_generate_api_key_as_a_process_fails_cleanly_on_bad_scopes(manage):
    result = manage("generate_api_key", "--name", "x", "--scopes", "storefront,bogus")

    assert result.returncode != 0
    assert result.stdout == ""
    assert "unknown scope: bogus" in result.stderr
    assert "Traceback" not in result.stderr


def test_generate_api_key_as_a_process_needs_its_arguments(manage):
    result = manage("generate_api_key", "--name", "x")

    assert result.returncode != 0
    assert "--scopes" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_key_lifecycle_as_real_processes(manage):
    made = manage("generate_api_key", "--name", "cli key", "--scopes", "storefront")
    assert made.returncode == 0, made.stderr
    raw = made.stdout.splitlines()[-1]
    prefix = api_key_parse_prefix(raw)
    assert prefix is not None
    assert made.stdout.strip() == raw  # nothing else on stdout: `KEY=$(...)` just works
    assert "cannot be shown again" in made.stderr

    listed = manage("list_api_keys")
    assert listed.returncode == 0
    assert prefix in listed.stdout
    assert raw.split("_", 2)[2] not in listed.stdout + listed.stderr

    revoked = manage("revoke_api_key", prefix)
    assert revoked.returncode == 0, revoked.stderr
    assert f"prefix {prefix}" in revoked.stdout

    unknown = manage("revoke_api_key", "zzzzzzzz")
    assert unknown.returncode != 0
    assert "zzzzzzzz" in unknown.stderr
    assert "Traceback" not in unknown.stderr


# --- list_api_keys ------------------------------------------------------------------------


def test_list_api_keys_shows_prefix_name_and_state_never_the_secret(make_key):
    active = make_key("storefront", name="shop-active")
    revoked = make_key("admin", name="ops-revoked")
    expired = make_key("catalog:read", name="old-expired", expires_at=timezone.now() + timedelta(1))
    ApiKey.objects.filter(name="old-expired").update(expires_at=timezone.now() - timedelta(1))
    run("revoke_api_key", api_key_parse_prefix(revoked))

    out, _ = run("list_api_keys")
    out_all, _ = run("list_api_keys", "--all")

    header = out.splitlines()[0].split()
    assert header[:3] == ["PREFIX", "NAME", "STATE"]
    rows = {line.split()[1]: line.split() for line in out_all.splitlines()[1:]}
    assert rows["shop-active"][0] == api_key_parse_prefix(active)
    assert rows["shop-active"][2] == "active"
    assert rows["ops-revoked"][2] == "revoked"
    assert rows["old-expired"][2] == "expired"
    assert "ops-revoked" not in out  # revoked keys only with --all
    assert "old-expired" in out
    for raw in (active, revoked, expired):
        secret = raw.split("_", 2)[2]
        assert secret not in out_all


def test_list_api_keys_with_no_keys_says_how_to_make_one():
    out, err = run("list_api_keys")

    assert out.splitlines() == [out.splitlines()[0]]  # the header only
    assert "generate_api_key" in err


# --- revoke_api_key -----------------------------------------------------------------------


def test_revoke_api_key_by_prefix_locks_the_key_out(make_key):
    raw = make_key("storefront", name="to revoke")
    assert api(raw).get("/api/v1/products/").status_code == 200
    prefix = api_key_parse_prefix(raw)

    out, _ = run("revoke_api_key", prefix)

    assert "to revoke" in out and prefix in out
    assert api(raw).get("/api/v1/products/").status_code == 401
    key = ApiKey.objects.get(prefix=prefix)
    assert key.revoked_at is not None
    entry = AuditLog.objects.get(action="api_key.revoked", object_id=str(key.pk))
    assert (entry.actor_type, entry.actor_id) == ("system", "revoke_api_key")


def test_revoke_api_key_accepts_the_whole_key_and_is_idempotent(make_key):
    raw = make_key("storefront", name="leaked")

    run("revoke_api_key", raw)
    run("revoke_api_key", raw)

    assert api(raw).get("/api/v1/products/").status_code == 401
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1


def test_revoke_api_key_refuses_an_unknown_prefix(make_key):
    make_key("storefront", name="other")

    with pytest.raises(CommandError, match="No API key has the prefix 'nosuchpf'"):
        run("revoke_api_key", "nosuchpf")

    assert ApiKey.objects.get(name="other").revoked_at is None


# --- seed_database ------------------------------------------------------------------------


def _catalog_rows() -> list[tuple]:
    paths = category_paths()
    return [
        (p.sku, p.name, p.price, p.status, paths[p.category_id], p.attributes)
        for p in Product.objects.order_by("sku")
    ]


def test_seed_database_builds_a_nested_catalog_in_all_three_statuses():
    out, _ = run(
        "seed_database", "--products", "300", "--seed", "7", "--no-progress", "--catalog-only"
    )

    assert "300 new products" in out
    assert Product.objects.filter(parent__isnull=True).count() == 300
    # Every fifth product sells alone; the others in 2 to 5 variants: 3 things on average.
    variants = Product.objects.filter(parent__isnull=False)
    assert "840 new variants" in out and variants.count() == 840  # and 60 alone: 900
    assert not Product.objects.filter(parent__isnull=True, options=[], variants__isnull=False)
    apparel = variants.filter(category__name="Shirts").first()
    assert apparel is not None and list(apparel.option_values) == ["Size", "Colour"]
    paths = set(category_paths().values())
    assert {"Apparel / Men / Shirts", "Outdoor / Camping / Tents", "Apparel / Kids"} <= paths
    statuses = dict(Product.objects.values_list("status").annotate(n=Count("id")))
    assert set(statuses) == {"draft", "published", "archived"}
    assert statuses["published"] > statuses["draft"] > 0
    # Only what the storefront may see is published: every published product is valid.
    for product in Product.objects.filter(status="published").select_related("category"):
        assert product.publish_problems() == {}
        assert product.published_at is not None
    assert not Product.objects.filter(status="draft", published_at__isnull=False).exists()
    # Products hang on leaves, not on inner nodes.
    assert not Product.objects.filter(category__children__isnull=False).exists()


def test_seed_database_is_audited_as_a_job():
    run("seed_database", "--products", "50", "--seed", "7", "--no-progress", "--catalog-only")

    bulk = AuditLog.objects.get(action="product.bulk_created")
    assert (bulk.actor_type, bulk.actor_id) == ("system", "seed_database")
    assert bulk.changes["count"]["after"] == 50
    created = AuditLog.objects.filter(action="category.created", actor_id="seed_database")
    assert created.count() == Category.objects.count()


def test_seed_database_refuses_demo_orders_in_production_before_writing_anything():
    """With DEBUG off (a production shop, perhaps live) the demo orders would reach every
    active webhook endpoint: refused, nothing written; the catalog alone is allowed."""
    with pytest.raises(CommandError, match="--allow-production"):
        run("seed_database", "--products", "30", "--seed", "7", "--no-progress")
    assert not Product.objects.exists() and not Category.objects.exists()

    run("seed_database", "--products", "30", "--seed", "7", "--no-progress", "--catalog-only")
    assert Product.objects.filter(parent__isnull=True).count() == 30


def test_seed_database_again_adds_nothing():
    # pytest-django runs with DEBUG off, as production does: the demo orders need the flag.
    run("seed_database", "--products", "300", "--seed", "7", "--no-progress", "--allow-production")
    first = _catalog_rows()
    categories = Category.objects.count()
    audit = AuditLog.objects.count()

    out, _ = run(
        "seed_database", "--products", "300", "--seed", "7", "--no-progress", "--allow-production"
    )

    assert "0 new products (300 already present)" in out
    assert _catalog_rows() == first
    assert Category.objects.count() == categories
    assert AuditLog.objects.count() == audit  # nothing new, nothing recorded


def test_seed_database_rows_are_exactly_the_demo_generator_output():
    run("seed_database", "--products", "300", "--seed", "7", "--no-progress", "--catalog-only")

    leaves = demo.leaf_names()
    expected = [demo.demo_product(7, i, leaves) for i in range(300)]
    stored = {p.sku: p for p in Product.objects.select_related("category")}
    for want in expected:
        got = stored[want.sku]
        assert (got.name, got.price, got.status, got.category.name, got.attributes) == (
            want.name,
            want.price,
            want.status,
            want.category,
            want.attributes,
        )


def test_another_seed_gives_another_catalog_beside_the_first():
    run("seed_database", "--products", "20", "--seed", "7", "--no-progress", "--catalog-only")
    out, _ = run(
        "seed_database", "--products", "20", "--seed", "8", "--no-progress", "--catalog-only"
    )

    assert "20 new products" in out
    assert Product.objects.filter(parent__isnull=True).count() == 40
    names7 = {demo.demo_product(7, i, demo.leaf_names()).name for i in range(20)}
    names8 = {demo.demo_product(8, i, demo.leaf_names()).name for i in range(20)}
    assert names7 != names8


def test_the_demo_generator_is_the_same_in_every_process():
    """Two fresh interpreters (different hash seeds) produce the same catalog as this one."""
    leaves = demo.leaf_names()
    here = [repr(demo.demo_product(7, i, leaves)) for i in range(300)]
    code = (
        "from catalog import demo; leaves = demo.leaf_names(); "
        "print('\\n'.join(repr(demo.demo_product(7, i, leaves)) for i in range(300)))"
    )
    for hash_seed in ("1", "4242"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert result.stdout.splitlines() == here


def test_the_demo_generator_is_pinned():
    """A change to the generator changes every demo shop; this makes it deliberate."""
    first = demo.demo_product(7, 0, demo.leaf_names())

    assert first.sku == "DEMO7-0000000"
    assert (first.name, str(first.price), first.status, first.category) == PINNED_SEED_7_INDEX_0


def test_seed_database_uses_the_configured_currency(settings):
    settings.PMS_DEFAULT_CURRENCY = "USD"

    run("seed_database", "--products", "5", "--no-progress", "--catalog-only")

    assert set(Product.objects.values_list("currency", flat=True)) == {"USD"}


def test_seed_database_shows_progress_on_stderr_unless_told_not_to():
    out, err = run("seed_database", "--products", "10", "--catalog-only")

    assert "10/10" in err
    assert "10/10" not in out


@pytest.mark.parametrize("value", ["-1", "2000001"])
def test_seed_database_refuses_a_bad_product_count(value):
    with pytest.raises(CommandError, match="--products must be from 0 to 2,000,000"):
        run("seed_database", "--products", value, "--no-progress")

    assert not Product.objects.exists()
    assert not Category.objects.exists()


def test_seed_database_as_a_process_refuses_bad_counts(manage):
    for value, message in (("-5", "--products must be"), ("many", "invalid int value")):
        result = manage("seed_database", "--products", value, "--no-progress")
        assert result.returncode != 0
        assert message in result.stderr
        assert "Traceback" not in result.stderr


PINNED_SEED_7_INDEX_0 = ("Lightweight Recycled Joggers (Sand)", "44.99", "published", "Trousers")
