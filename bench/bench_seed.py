"""Seed benchmark (Foundation issue, "Speed"): ``seed_database --products 100000`` into an
empty database, wall time and peak RSS."""

from __future__ import annotations

from harness.common import log
from harness.context import Context, benchmark
from harness.fixtures import catalog_seed
from harness.services import drop_database, recreate_database

SEED_MAX_SECONDS = 60.0
SEED_MAX_RSS_MB = 400.0

NOTES = ["Fresh migrated database; wall time and peak RSS of the manage.py process."]


@benchmark("seed", notes=NOTES)
def bench_seed(ctx: Context) -> None:
    """``seed_database --products 100000`` into an empty, migrated database."""
    db = f"{ctx.args.database}_seed"
    url = recreate_database(db)
    ctx.manage(url, "migrate", "--noinput", "-v0")
    log(f"timing seed_database --products {ctx.args.large:,}")
    # The catalog, as this target has always measured (no demo stock, orders or history).
    m = ctx.run_timed(url, *catalog_seed(ctx.args.large))
    name = f"seed_database --products {ctx.args.large}"
    ctx.row(
        f"{name}: wall time",
        value=f"{m['seconds']:.1f} s",
        target=f"< {SEED_MAX_SECONDS:g} s",
        passed=m["seconds"] < SEED_MAX_SECONDS,
        seconds=round(m["seconds"], 2),
        products_per_second=round(ctx.args.large / m["seconds"], 1),
    )
    ctx.row(
        f"{name}: peak RSS",
        value=f"{m['peak_rss_mb']:.0f} MB",
        target=f"< {SEED_MAX_RSS_MB:g} MB",
        passed=m["peak_rss_mb"] < SEED_MAX_RSS_MB,
        peak_rss_mb=round(m["peak_rss_mb"], 1),
    )
    drop_database(db)
