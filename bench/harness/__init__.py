"""The machinery the benchmarks share (``bench/run.py`` is the driver; each benchmark is a
``bench/bench_<name>.py`` of its own)."""
