"""Statistics of the rounds: medians, ratios between loads run side by side, percentiles."""

from __future__ import annotations

import os
from typing import Any


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def aggregate(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {
        metric: round(median([r[metric] for r in rounds]), 2)
        for metric in ("rps", "p50_ms", "p90_ms", "p99_ms", "cpu_ms", "db_cpu_ms")
    }
    result["rps"] = round(result["rps"], 1)
    result["max_ms"] = round(max(r["max_ms"] for r in rounds), 2)
    result["requests"] = sum(r["requests"] for r in rounds)
    result["errors"] = sum(r["errors"] for r in rounds)
    result["rounds"] = [
        {k: round(r[k], 2) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms", "db_cpu_ms")}
        for r in rounds
    ]
    if all("load_cpu_ms" in r for r in rounds):
        # CPU of the load generator per request, and the share of one core it used.
        result["load_cpu_ms"] = round(median([r["load_cpu_ms"] for r in rounds]), 3)
        result["load_core_share"] = round(
            median([r["load_cpu_ms"] * r["rps"] / 1000 for r in rounds]), 3
        )
    return result


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk, pgbench, ...)."""
    usage = os.times()
    return usage.children_user + usage.children_system


def ratio_to(measured: dict[str, Any], base: dict[str, Any], metric: str) -> float:
    """The median over rounds of measured / base, ``base`` being the loads run first in
    each round: a round of ``measured`` is compared with the mean of the ``base`` rounds
    just before and just after it, which bracket it in time."""
    ours, theirs = measured["rounds"], base["rounds"]
    ratios = []
    for i, m in enumerate(ours):
        near = theirs[i : i + 2]
        b = sum(r[metric] for r in near) / len(near)
        ratios.append(m[metric] / b if b else float("inf"))
    return median(ratios)


def percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
