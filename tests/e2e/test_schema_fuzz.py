"""The API against its own schema: Schemathesis fuzzes every operation of ``/api/schema/``
on the production web process, with an admin key and with a storefront key, running all of
its checks (server errors, status codes, content types, response schemas and headers,
negative data refused, schema-valid data accepted, ignored auth, missing required headers,
unsupported methods, use after free, resource availability). A bad key gets 401 from
every operation but the public ones.

Bounded for CI: at most ``PMS_FUZZ_EXAMPLES`` (15) cases per operation and phase, a
request timeout, and a hard limit on the whole run. ``PMS_FUZZ_SEED`` replays a run.
Reports land in ``tests/artifacts/schemathesis/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from audit.actors import Actor
from inventory.models import Location
from inventory.transfers import transfer_create
from tests.conftest import ORDER_ADDRESS, ORDER_CUSTOMER, _need
from tests.e2e.conftest import ROOT
from tests.e2e.processes import Redis, base_env, start_server

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")
ARTIFACTS = ROOT / "tests" / "artifacts" / "schemathesis"
EXAMPLES = os.environ.get("PMS_FUZZ_EXAMPLES", "15")
SEED = os.environ.get("PMS_FUZZ_SEED", "20261126")
RUN_LIMIT = 300  # seconds; a run takes about a minute on 2 cores
METHODS = ("get", "post", "put", "patch", "delete")
PUBLIC = {("get", "/api/v1/ping/")}


@pytest.fixture(scope="module")
def api(django_db_setup, tmp_path_factory):
    """The production web process (rate limits off: the fuzzer is one busy client)."""
    _need("PostgreSQL", settings.DATABASE_BACKEND == "postgresql")
    workdir = tmp_path_factory.mktemp("fuzz")
    redis = Redis(workdir)
    redis.start()
    try:
        web = start_server(workdir, base_env(redis.url))
        yield web
        web.stop()
    finally:
        redis.stop()


@pytest.fixture
def shop(api, make_key, make_product, receive):
    """A catalog with stock, and an order placed by the storefront key."""
    admin, storefront = make_key("admin", name="fuzz admin"), make_key("storefront", name="fuzz")
    lamp = make_product("published")
    receive(lamp, 500)
    receive(make_product("published"), 3)
    make_product("draft")
    with httpx.Client(base_url=api.base_url, timeout=15) as client:
        placed = client.post(
            "/api/v1/orders/",
            headers={"Authorization": f"Api-Key {storefront}", "Idempotency-Key": uuid.uuid4().hex},
            json={
                "items": [{"product": lamp.pk, "quantity": 2}],
                "customer": ORDER_CUSTOMER,
                "shipping_address": ORDER_ADDRESS,
            },
        )
    assert placed.status_code == 201, placed.text
    # A draft transfer of lamps, for the transfer steps to reach a real one.
    Location.objects.get_or_create(code="main", defaults={"name": "Main warehouse"})
    Location.objects.get_or_create(code="store", defaults={"name": "Store", "priority": 200})
    transfer = transfer_create(
        actor=Actor.system("fuzz"), from_location="main", to_location="store", lines={lamp: 5}
    )
    return {
        "admin": admin,
        "storefront": storefront,
        "order": placed.json()["id"],
        "transfer": transfer.number,
    }


def _fuzz(api, key: str, name: str, shop: dict) -> None:
    report_dir = ARTIFACTS / name
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        f"{api.base_url}/api/schema/",
        "--checks",
        "all",
        "--header",
        f"Authorization: Api-Key {key}",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        # One worker: with several threads, Hypothesis' ast.parse trips CPython 3.11's "AST
        # constructor recursion depth mismatch" now and then (and two are no faster here).
        "--workers",
        "1",
        "--request-timeout",
        "15",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=ARTIFACTS,
        env={
            **os.environ,
            "PMS_FUZZ_ORDER_ID": shop["order"],
            "PMS_FUZZ_TRANSFER_NUMBER": shop["transfer"],
        },
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
    )
    output = result.stdout + result.stderr
    summary = re.search(r"Test cases:\s*\n\s*(.+)", output)
    print(
        f"\n  schemathesis ({name}): {summary.group(1) if summary else '?'} "
        f"in {time.monotonic() - started:.0f} s; reports in {report_dir.relative_to(ROOT)}"
    )
    if len(output) > 24000:
        output = f"{output[:6000]}\n[…]\n{output[-18000:]}"
    assert result.returncode == 0, f"schemathesis found problems:\n{output}"
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-3000:]
    assert int(tested.group(1)) == int(selected.group(1)) == int(selected.group(2)) >= 40
    log = api.log_path.read_text(errors="replace")
    assert "Internal Server Error" not in log, api.log_tail(200)


def test_fuzz_with_an_admin_key(api, shop):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _fuzz(api, shop["admin"], "admin", shop)


def test_fuzz_with_a_storefront_key(api, shop):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _fuzz(api, shop["storefront"], "storefront", shop)


def _url(path: str, operation: dict) -> str:
    schemas = {
        p["name"]: p.get("schema", {})
        for p in operation.get("parameters", [])
        if p.get("in") == "path"
    }

    def value(name: str) -> str:
        schema = schemas.get(name, {})
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        # A number with a prefix ("RMA-…", "TR-…"): the prefix and a digit.
        prefix = re.match(r"\^?([A-Z]+-)", schema.get("pattern", ""))
        return (prefix.group(1) if prefix else "") + "1"

    return re.sub(r"\{(\w+)\}", lambda m: value(m.group(1)), path)


def test_every_operation_but_the_public_ones_refuses_a_bad_key(api, shop):
    schema = httpx.get(f"{api.base_url}/api/schema/?format=json", timeout=15).json()
    bad_keys = [
        {"Authorization": "Api-Key pms_nothere_" + "x" * 43},  # well-formed, unknown
        {"Authorization": f"Api-Key {shop['admin']}x"},  # a real key, altered
        {"Authorization": "Api-Key garbage"},
        {"X-API-Key": "pms_nothere_" + "y" * 43},
        {},  # no credentials at all
    ]
    seen, public = 0, set()
    with httpx.Client(base_url=api.base_url, timeout=15) as client:
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                if method not in METHODS:
                    continue
                if not any(operation.get("security") or []):
                    public.add((method, path))
                    continue
                seen += 1
                body = {} if "requestBody" in operation else None
                for headers in bad_keys:
                    response = client.request(
                        method.upper(),
                        _url(path, operation),
                        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                        json=body,
                    )
                    where = f"{method.upper()} {path} with {sorted(headers) or 'nothing'}"
                    assert response.status_code == 401, f"{where}: {response.status_code}"
                    assert response.headers["content-type"] == "application/problem+json", where
                    assert response.json()["code"] in (
                        "not_authenticated",
                        "authentication_failed",
                    ), where
    assert public == PUBLIC
    assert seen >= 40
