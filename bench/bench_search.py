"""Search benchmark (issue 17, part 4, "Speed"): product search and its facets over the
demo catalog at full size (100,000 products, 300,000 variants) against the uncached
product list page, at the same load."""

from __future__ import annotations

from urllib.parse import urlencode

from harness.context import Context, benchmark
from harness.fixtures import seeded_catalog
from harness.loadgen import Load
from harness.services import drop_database, vacuum_analyze
from harness.stats import ratio_to

MAX_P99_RATIO = 3.0
# Fewer connections than the run's 32, for all three loads alike: a round of wrk ends with
# its requests still queued at the server, and 32 queued searches (tens of ms each) would
# still be served during the next load's round, charged to it.
CONNECTIONS = 8

# What shoppers type, over the demo catalog's words: product kinds (narrow), an adjective
# and a kind, a material (broad: one product in fifteen), a typo (found by trigram
# similarity once no product has the word), a SKU, and a search with an option filter.
SEARCHES = [
    {"search": "oxford shirt"},
    {"search": "wok"},
    {"search": "sleeping bag"},
    {"search": "vintage mug"},
    {"search": "linen"},
    {"search": "skilet"},
    {"search": "DEMO1-0012345"},
    {"search": "jacket", "option": "Size:M"},
]

NOTES = [
    "Catalog: seed_database --products N (the --large size, default 100,000: 300,000 "
    "variants), VACUUM ANALYZE after the seed; the same in --quick mode (only fewer, "
    "shorter rounds).",
    "All loads with the admin key (catalog:write), read from PostgreSQL on every request: "
    "uncached list = GET /api/v1/products/?page_size=20 (its total count remembered per "
    "catalog version once it reaches 5,000 rows, as for any list); search = the same page "
    "with ?search= rotating over "
    + ", ".join(f"'{s['search']}'" for s in SEARCHES)
    + " (the last with option=Size:M); facets = GET /api/v1/products/facets/ with the same "
    "rotation (never cached).",
    f"{CONNECTIONS} wrk connections for each of the three loads (not the run's "
    "--connections: a round ends with its requests still queued at the server, and many "
    "queued searches would be served during the next load's round). ratio = median over "
    "rounds of this load's p99 over the uncached list's in the rounds around it (the loads "
    "interleaved in the same rounds).",
]


def _paths(base: str) -> list[str]:
    return [f"{base}?{urlencode({**params, 'page_size': 20}, doseq=True)}" for params in SEARCHES]


@benchmark("search", notes=NOTES)
def bench_search(ctx: Context) -> None:
    """Search and facets over 100k products / 300k variants vs the uncached list."""
    db = f"{ctx.args.database}_search"
    url = seeded_catalog(ctx, db, ctx.args.large)
    vacuum_analyze(url)
    admin = ctx.api_key(url, "admin")
    server = ctx.server(url)
    loads = [
        Load("uncached list", ["/api/v1/products/?page_size=20"], admin, connections=CONNECTIONS),
        Load("search", _paths("/api/v1/products/"), admin, connections=CONNECTIONS),
        Load("facets", _paths("/api/v1/products/facets/"), admin, connections=CONNECTIONS),
    ]
    measured = ctx.measure(server, loads)
    size = f"{ctx.args.large // 1000}k"
    base = measured["uncached list"]
    ctx.row(f"uncached list (admin key, {size})", base)
    for name in ("search", "facets"):
        m = measured[name]
        ratio = ratio_to(m, base, "p99_ms")
        ctx.row(
            f"{name} (admin key, {size}): p99 / uncached list p99",
            m,
            ratio=ratio,
            value=f"p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms (list p50 {base['p50_ms']} ms, "
            f"p99 {base['p99_ms']} ms); CPU/req server {m['cpu_ms']} ms, PostgreSQL "
            f"{m['db_cpu_ms']} ms (list {base['cpu_ms']} / {base['db_cpu_ms']} ms)",
            target=f"<= {MAX_P99_RATIO:g}x",
            passed=ratio <= MAX_P99_RATIO,
        )
    ctx.stop_servers()
    if not ctx.args.keep:
        drop_database(db)
