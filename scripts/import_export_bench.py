"""Measure import_products / export_products: wall time and peak RSS of each run.

    DATABASE_URL=postgres://…/scratch .venv/bin/python scripts/import_export_bench.py \
        [--products 100000] [--small 10000] [--folder /tmp/pms-import-bench]

Each command runs as its own process; ``os.wait4`` gives that process's peak RSS and CPU
time (the CPU time does not count the database server's work, but neither does it grow
when other processes compete for the machine, as wall time does).
**The database named by DATABASE_URL is flushed**: give it a scratch one. Targets
(docs/import-export.md): import of 100,000 products under 120 s and 500 MB; export under
30 s with memory flat in the number of rows (compare the small and the full export).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
sys.path.insert(0, str(ROOT))
from catalog.csv_columns import COLUMNS  # noqa: E402 (the project root is on the path now)

CATEGORIES = [
    f"{root} / {middle} / {leaf}"
    for root, middle, leaves in [
        ("Apparel", "Men", ["Shirts", "Trousers", "Jackets"]),
        ("Apparel", "Women", ["Dresses", "Tops", "Shoes"]),
        ("Home", "Kitchen", ["Cookware", "Knives", "Mugs"]),
        ("Home", "Living", ["Lamps", "Rugs", "Cushions"]),
        ("Outdoor", "Camping", ["Tents", "Sleeping bags", "Stoves"]),
    ]
    for leaf in leaves
]
WORDS = [
    "light",
    "classic",
    "recycled",
    "ceramic",
    "woollen",
    "compact",
    "sturdy",
    "soft",
    "linen",
    "bamboo",
]
NOUNS = [
    "shirt",
    "mug",
    "lamp",
    "tent",
    "stove",
    "rug",
    "jacket",
    "dress",
    "knife",
    "cushion",
    "pan",
    "kettle",
]
COLOURS = ["red", "blue", "green", "black", "white", "forest", "sand", "navy"]


def generate(path: Path, count: int, *, seed: int = 1, change: bool = False) -> None:
    """Write ``count`` believable product rows; ``change``: another price for 1 row in 10
    and another stock level for another 1 in 10 (the same rows otherwise)."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for i in range(count):
            name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {rng.choice(NOUNS)}"
            colour = rng.choice(COLOURS)
            price = rng.randint(199, 49999) / 100
            if change and i % 10 == 0:
                price += 1
            status = rng.choices(["published", "draft", "archived"], [7, 2, 1])[0]
            writer.writerow(
                [
                    f"BENCH-{i:07d}",
                    f"{name} ({colour})",
                    f"bench-{i:07d}",
                    f"{name} in {colour}. Generated for the import benchmark, row {i}.",
                    f"{price:.2f}",
                    "EUR",
                    CATEGORIES[i % len(CATEGORIES)],
                    status,
                    str(rng.randint(0, 500) + (7 if change and i % 10 == 5 else 0)),
                    json.dumps({"colour": colour, "weight_g": rng.randint(50, 5000)}),
                ]
            )


class CommandFailed(RuntimeError):
    """A measured command exited with an error (the message ends with its stderr)."""


def measure(*args: str, env: dict[str, str] | None = None) -> dict:
    """Run ``manage.py args`` (in ``env``, default this process's environment); return
    wall seconds, CPU seconds, peak RSS (MB) and the last output line. Raise
    ``CommandFailed`` when it fails. ``scripts/bench.sh operations`` uses it too."""
    started = time.perf_counter()
    quiet = ["--no-progress"] if args[0] in ("import_products", "export_products") else []
    process = subprocess.Popen(  # noqa: S603 -- our own manage.py and arguments
        [PYTHON, "manage.py", *args, *quiet],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE if args[-1] != "-" else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Read before waiting: a full pipe would block the child.
    stdout = process.stdout.read() if process.stdout else b""
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise CommandFailed(f"manage.py {' '.join(args)} failed:\n{stderr.decode()[-3000:]}")
    return {
        "command": " ".join(args),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "output": ((stdout or stderr).decode().strip().splitlines() or [""])[-1][:160],
    }


def allow_flush(url: str) -> None:
    """Let ``manage.py flush`` empty the audit tables of this scratch database: they refuse
    TRUNCATE unless the database says so (audit/migrations/0005_truncate_trigger.py), as
    the test database does."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET pms.audit_truncate = 'allowed'").format(
                sql.Identifier(name)
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "pms-import-bench"))
    options = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("Set DATABASE_URL to a scratch PostgreSQL database (it is flushed).")
    folder = Path(options.folder)
    folder.mkdir(parents=True, exist_ok=True)
    full, changed, small = folder / "full.csv", folder / "changed.csv", folder / "small.csv"
    generate(full, options.products)
    generate(changed, options.products, change=True)
    generate(small, options.small)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)  # noqa: S603
    allow_flush(os.environ["DATABASE_URL"])

    steps = [
        ("Django start-up (baseline)", ("check",)),
        ("flush", ("flush", "--noinput")),
        (f"import {options.small:,} new", ("import_products", str(small), "--create-categories")),
        (f"export {options.small:,}", ("export_products", str(folder / "out-small.csv"))),
        ("flush", ("flush", "--noinput")),
        (
            f"dry run {options.products:,}",
            ("import_products", str(full), "--dry-run", "--create-categories"),
        ),
        (f"import {options.products:,} new", ("import_products", str(full), "--create-categories")),
        (f"import {options.products:,} again", ("import_products", str(full))),
        (f"import {options.products:,} changed", ("import_products", str(changed))),
        (f"export {options.products:,}", ("export_products", str(folder / "out-full.csv"))),
    ]
    results = []
    for label, args in steps:
        try:
            result = measure(*args) | {"step": label}
        except CommandFailed as exc:
            sys.exit(str(exc))
        results.append(result)
        print(
            f"{label:<30} {result['seconds']:>7} s {result['cpu_seconds']:>7} s CPU "
            f"{result['peak_rss_mb']:>6} MB  " + result["output"],
            flush=True,
        )
    (folder / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
