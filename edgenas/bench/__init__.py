"""Latency regression gate for CI (``edgenas bench``).

- :mod:`edgenas.bench.spec`: the TOML spec (cases, devices, protocol, thresholds), pure.
- :mod:`edgenas.bench.runner`: measure a spec (sequentially, or A/B interleaved).
- :mod:`edgenas.bench.results`: the ``edgenas.bench/v1`` results/baseline file.
- :mod:`edgenas.bench.compare`: noise-aware verdicts (threshold + Mann-Whitney U).
- :mod:`edgenas.bench.report`: table, JUnit XML and Markdown reports.

Measuring itself is :func:`edgenas.devices.profile_model`; nothing here times anything.
"""
