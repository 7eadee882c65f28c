"""The report: ``bench/results/<date>.json``, ``<date>.md`` and ``latest.md``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from harness.common import RESULTS_DIR, ROOT, counted
from harness.context import BENCHMARKS, NOTES, Context


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}{suffix}" if value >= 100 else f"{value:.2f}{suffix}"
    return f"{value:,}{suffix}" if isinstance(value, int) else f"{value}{suffix}"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Benchmarks {report['date']}", ""]
    for name, section in report["benchmarks"].items():
        lines += [
            f"## {name}",
            "",
            f"{section['description']}",
            "",
            _run_line(section),
            "",
            "| benchmark | req/s | p50 | p99 | ratio | target | pass | CPU/req (server + db) |",
            "|---|---:|---:|---:|---:|---|---|---:|",
        ]
        lines += [_table_row(row) for row in section["rows"]]
        lines += [""]
        if section.get("notes"):
            lines += [f"- {note}" for note in section["notes"]] + [""]
    verdict = "all targets met" if report["passed"] else "**some targets missed**"
    lines += [f"Overall: {verdict}.", ""]
    return "\n".join(lines)


def _run_line(section: dict[str, Any]) -> str:
    """When, where and how a section ran (how wrk loaded, if it measured with wrk)."""
    cfg = section["config"]
    return (
        f"Run {section['finished_at']} at commit `{cfg['commit']}` on {cfg['machine']} "
        f"(load average {cfg['load_before']} before, {cfg['load_after']} after)"
        + (
            f"; {counted(cfg['workers'], 'uvicorn worker process', 'uvicorn worker processes')}; "
            f"each load {cfg['rounds']} "
            f"rounds of wrk -t{cfg['threads']} -c{cfg['connections']} -d{cfg['duration']}s,"
            f" interleaved, after {cfg['warmup']} s of warm-up; figures are medians over "
            "the rounds"
            if any("rps" in row for row in section["rows"])
            else ""
        )
        + (" (quick mode)." if cfg["quick"] else ".")
    )


def _table_row(row: dict[str, Any]) -> str:
    ratio = row.get("value")
    if "ratio" in row:
        ratio = f"{row['ratio']:.2f}" + (f" ({ratio})" if ratio else "")
    passed = row.get("pass")
    return "| {name} | {rps} | {p50} | {p99} | {ratio} | {target} | {ok} | {cpu} |".format(
        name=row["name"],
        rps=_fmt(row.get("rps")),
        p50=_fmt(row.get("p50_ms"), " ms"),
        p99=_fmt(row.get("p99_ms"), " ms"),
        ratio=ratio or "—",
        target=row.get("target", "—"),
        ok="—" if passed is None else ("pass" if passed else "**FAIL**"),
        cpu=(f"{row['cpu_ms']:.2f} + {row['db_cpu_ms']:.2f} ms" if "cpu_ms" in row else "—"),
    )


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{counted(os.cpu_count() or 1, 'CPU')}, {model}"


def write_report(ctx: Context, names: list[str], started: dt.datetime) -> dict[str, Any]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    date = started.date().isoformat()
    json_path = RESULTS_DIR / f"{date}.json"
    report: dict[str, Any] = {"date": date, "benchmarks": {}}
    if json_path.exists():
        # Runs of a subset on the same day replace only their own sections.
        with contextlib.suppress(ValueError, KeyError):
            report["benchmarks"] = json.loads(json_path.read_text())["benchmarks"]
    config = {
        "commit": git_commit(),
        "machine": machine(),
        "workers": ctx.args.workers,
        "threads": ctx.args.threads,
        "connections": ctx.args.connections,
        "duration": ctx.duration,
        "rounds": ctx.rounds,
        "warmup": ctx.warmup,
        "load_before": ctx.load_before,
        "load_after": load_average(),
        "quick": ctx.args.quick,
        "products_small": ctx.args.small,
        "products_large": ctx.args.large,
    }
    for name in names:
        report["benchmarks"][name] = {
            "description": " ".join((BENCHMARKS[name].__doc__ or "").split()),
            "finished_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "config": config,
            "rows": [row for row in ctx.rows if row["benchmark"] == name],
            "notes": NOTES.get(name, []),
        }
    report["passed"] = all(
        row.get("pass", True)
        for section in report["benchmarks"].values()
        for row in section["rows"]
    )
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    markdown = render_markdown(report)
    (RESULTS_DIR / f"{date}.md").write_text(markdown)
    (RESULTS_DIR / "latest.md").write_text(markdown)
    return report


# --- Main ---------------------------------------------------------------------------------
