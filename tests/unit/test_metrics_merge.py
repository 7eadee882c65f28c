"""/metrics sums the samples of every process with a collector of its own (faster than
prometheus_client's): it must report exactly what the library would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from pms_backend.monitoring.metrics import process_collector

WRITER = """
    import sys
    from prometheus_client import Counter, Gauge, Histogram, Summary
    n = int(sys.argv[1])
    requests = Counter("t_requests", "Requests.", ["endpoint", "status"])
    plain = Counter("t_plain", "No labels.")
    latency = Histogram("t_latency_seconds", "Latency.", ["endpoint"], buckets=(0.1, 1.0))
    sizes = Summary("t_size_bytes", "Sizes.")
    live = Gauge("t_connections", "Open.", multiprocess_mode="livesum")
    each = Gauge("t_each", "Per process.", multiprocess_mode="all")
    for i in range(n):
        requests.labels(endpoint=f"e{i % 3}", status="2xx").inc()
        latency.labels(endpoint=f"e{i % 3}").observe([0.05, 0.5, 5.0][i % 3] * n)
        sizes.observe(100 * n)
    requests.labels(endpoint="e0", status="4xx").inc(n)
    plain.inc(n)
    live.set(n)
    each.set(n * 10)
"""


def _samples(registry: CollectorRegistry) -> dict:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_sums_are_the_librarys(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (1, 2, 3, 7):
        subprocess.run([sys.executable, "-c", textwrap.dedent(WRITER), str(n)], env=env, check=True)
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    ours.register(process_collector(str(tmp_path)))
    multiprocess.MultiProcessCollector(theirs, path=str(tmp_path))

    mine, library = _samples(ours), _samples(theirs)

    assert mine.keys() == library.keys()
    assert mine == {key: pytest.approx(value) for key, value in library.items()}
    # Not two empty answers: the four processes' counts, summed and bucketed.
    assert mine["t_plain_total", ()] == 13
    assert mine["t_requests_total", (("endpoint", "e0"), ("status", "4xx"))] == 13
    e0 = (("endpoint", "e0"),)
    assert mine["t_latency_seconds_count", e0] == 1 + 1 + 1 + 3
    assert mine["t_latency_seconds_bucket", (*e0, ("le", "+Inf"))] == 6
    assert mine["t_connections", ()] == 13


def test_the_private_file_reader_metrics_builds_on_is_still_there(tmp_path):
    """metrics.py sums the process files with prometheus_client's private
    ``mmap_dict.MmapedDict.read_all_values_from_file`` (no public API reads them this fast);
    pyproject.toml pins prometheus-client below the next version. A library that changes
    that reader or the key it writes must fail here, by name."""
    try:
        from prometheus_client.mmap_dict import MmapedDict, mmap_key

        read = MmapedDict.read_all_values_from_file
    except (ImportError, AttributeError) as exc:
        pytest.fail(
            f"prometheus_client no longer has mmap_dict.MmapedDict.read_all_values_from_file "
            f"({exc}): pms_backend/monitoring/metrics.py (_summed) must change with it"
        )
    path = str(tmp_path / "counter_1.db")
    written = MmapedDict(path)
    key = mmap_key("t", "t_total", ["endpoint"], ["e1"], "Help.")
    written.write_value(key, 3.0, 0.0)
    written.close()

    entries = list(read(path))

    assert len(entries) == 1 and len(entries[0]) == 4, (
        f"read_all_values_from_file no longer yields (key, value, timestamp, position): "
        f"{entries!r}; pms_backend/monitoring/metrics.py (_summed) must change with it"
    )
    read_key, value, _timestamp, _position = entries[0]
    assert json.loads(read_key) == ["t", "t_total", {"endpoint": "e1"}, "Help."], (
        f"the key of a sample is no longer [metric, sample, labels, help]: {read_key!r}; "
        f"pms_backend/monitoring/metrics.py (_summed) must change with it"
    )
    assert value == 3.0
