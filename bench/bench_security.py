"""Security benchmark (issue "Security layer"): the cached storefront list with key auth
and rate limits on against limits off, two servers side by side; micro-benchmarks of key
authentication, the limiter and order PII encryption."""

from __future__ import annotations

from harness.common import log
from harness.context import Context, benchmark
from harness.fixtures import seeded_catalog, shell_json
from harness.loadgen import Load
from harness.services import drop_database, vacuum_analyze
from harness.stats import ratio_to

SECURITY_MIN_RPS_RATIO = 0.90

NOTES = [
    "No endpoint serves the product list without a key, so OFF = key auth only: the "
    "same cached storefront list on a second server with PMS_RATE_LIMITS_ENABLED=false, "
    "loaded in the same interleaved rounds (OFF first in each round).",
    "With limits on, a key-authenticated API request makes one Redis round trip for "
    "limiting: once the key is checked, one Lua script counts the per-IP window, reads "
    "the failed-authentication count and counts the key's window (the guard middleware "
    "leaves the per-IP window of key-bearing requests to key authentication).",
    "Micro-benchmarks: manage.py shell on the bench database and Redis, timeit, median "
    "of the repeats; µs are wall time per call (Redis round trips included). PII = "
    "Order.customer_email (+ blind index), customer_name and shipping_address (JSON), "
    "through the model's EncryptedAttributes (AES-256-GCM, AAD table/column/pk); "
    "decryption reads the three from a fresh instance (its construction shown apart).",
]

MICRO_SNIPPET = """
import json, statistics, timeit, uuid
from django.core.cache import cache
from pms_backend.api import ratelimit
from pms_backend.apikeys.selectors import api_key_authenticate
from pms_backend.encryption.ciphers import decrypt, encrypt
from orders.models import Order

raw = {key!r}
number, repeat = {number}, {repeat}

def per_call(fn, n=number):
    runs = timeit.repeat(fn, number=n, repeat=repeat)
    return statistics.median(runs) / n * 1e6

assert api_key_authenticate(raw) is not None
out = {{"api_key_authenticate_us": per_call(lambda: api_key_authenticate(raw))}}
ip, cred = ratelimit.rate("ip"), ratelimit.rate("key")
fails = ratelimit.rate("auth_failures")
# As ApiKeyAuthentication does it for a key-bearing request, in one round trip: the IP
# window, the failed-authentication gate, the key's window.
out["ratelimit_key_request_us"] = per_call(
    lambda: ratelimit.count(
        [("ip", "127.0.0.1", ip), ("cred", "key:k", cred)],
        gate=("authfail", "127.0.0.1", fails),
        gate_at=1,
    )
)
# As the guard middleware does it for a request without a key: the IP window alone.
out["ratelimit_ip_us"] = per_call(lambda: ratelimit.hit([("ip", "127.0.0.2", ip)]))
out["ratelimit_peek_us"] = per_call(lambda: ratelimit.peek("authfail", "127.0.0.1", fails))
out["redis_get_us"] = per_call(lambda: cache.get("bench:absent"))

email, name = "jane.doe@example.com", "Jane Doe"
address = {{"name": "Jane Doe", "line1": "12 Long Street", "line2": "Flat 3",
    "city": "Berlin", "postal_code": "10115", "region": "", "country": "DE",
    "phone": "+49 30 1234567"}}
order = Order(pk=uuid.uuid4())

def encrypt_order():
    order.customer_email = email
    order.customer_name = name
    order.shipping_address = address

encrypt_order()
columns = (order.customer_email_ct, order.customer_name_ct, order.shipping_address_ct)

def decrypt_order():
    fresh = Order(pk=order.pk)
    fresh.customer_email_ct, fresh.customer_name_ct, fresh.shipping_address_ct = columns
    return fresh.customer_email, fresh.customer_name, fresh.shipping_address

assert decrypt_order() == (email, name, address)
out["order_pii_encrypt_us"] = per_call(encrypt_order)
out["order_pii_decrypt_us"] = per_call(decrypt_order)
out["order_new_instance_us"] = per_call(lambda: Order(pk=order.pk))
aad = b"orders_order/customer_email/" + str(order.pk).encode()
token = encrypt(email, aad=aad)
out["cipher_encrypt_us"] = per_call(lambda: encrypt(email, aad=aad))
out["cipher_decrypt_us"] = per_call(lambda: decrypt(token, aad=aad))
print("BENCH_JSON " + json.dumps(out))
"""


@benchmark("security", notes=NOTES)
def bench_security(ctx: Context) -> None:
    """The cached storefront list with key auth and rate limits on vs limits off (two
    servers, interleaved); what key auth and the limiter cost per call; order PII
    encryption."""
    db = f"{ctx.args.database}_security"
    url = seeded_catalog(ctx, db, ctx.args.small)
    vacuum_analyze(url)
    storefront = ctx.api_key(url, "storefront")
    on = ctx.server(url, label="security-on")
    off = ctx.server(url, label="security-off", extra_env={"PMS_RATE_LIMITS_ENABLED": "false"})
    list_path = "/api/v1/products/?page_size=20"
    hit = ("X-Cache", "hit")
    m = ctx.measure(
        on,
        [
            Load("off", [list_path], storefront, hit, server=off),
            Load("on", [list_path], storefront, hit, server=on),
            Load("ceiling", ["/api/v1/ping/"], server=on),
        ],
    )
    ctx.row("cached list, key auth, rate limits OFF (server 2)", m["off"], ratio=1.0)
    ctx.rps_ratio_row(
        "cached list, key auth + rate limits ON (server 1) / OFF",
        m["on"],
        m["off"],
        minimum=SECURITY_MIN_RPS_RATIO,
    )
    ctx.row(
        "ceiling: GET /api/v1/ping/ (server 1, limits on)",
        m["ceiling"],
        ratio=ratio_to(m["ceiling"], m["off"], "rps"),
    )
    ctx.stop_servers()

    number, repeat = (500, 3) if ctx.args.quick else (2000, 7)
    log(f"micro-benchmarks: {repeat} repeats of {number} calls, median")
    micro = shell_json(ctx, url, MICRO_SNIPPET.format(key=storefront, number=number, repeat=repeat))
    request_cpu_us = m["on"]["cpu_ms"] * 1000
    auth = micro["api_key_authenticate_us"]
    ctx.row(
        "api_key_authenticate (warm cache), µs/call",
        value=(
            f"{auth:.1f} µs = {auth / request_cpu_us:.1%} of the list's CPU/request "
            f"({request_cpu_us:.0f} µs)"
        ),
        **{k: round(v, 2) for k, v in micro.items() if k.startswith("api_key")},
    )
    gap_us = (m["on"]["cpu_ms"] - m["off"]["cpu_ms"]) * 1000
    ctx.row(
        "rate limiter per key-authenticated request (IP window, failed-auth gate, key window), µs",
        value=(
            f"{micro['ratelimit_key_request_us']:.1f} µs wall, 1 Redis round trip (without "
            f"a key, the IP window alone: {micro['ratelimit_ip_us']:.1f} µs; one Redis GET "
            f"alone: {micro['redis_get_us']:.1f} µs); the server's CPU/request ON - OFF: "
            f"{gap_us:.0f} µs"
        ),
        **{k: round(v, 2) for k, v in micro.items() if k.startswith("ratelimit")},
    )
    ctx.row(
        "encrypt one order's PII (email + blind index, name, address JSON), µs",
        value=f"{micro['order_pii_encrypt_us']:.1f} µs "
        f"(one field: {micro['cipher_encrypt_us']:.1f} µs)",
        **{k: round(v, 2) for k, v in micro.items() if k.startswith(("order", "cipher"))},
    )
    ctx.row(
        "decrypt one order's PII (3 fields, fresh instance), µs",
        value=f"{micro['order_pii_decrypt_us']:.1f} µs "
        f"(one field: {micro['cipher_decrypt_us']:.1f} µs; "
        f"new Order() alone {micro['order_new_instance_us']:.1f} µs)",
    )
    if not ctx.args.keep:
        drop_database(db)
