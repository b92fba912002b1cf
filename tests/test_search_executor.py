"""Executors: the process pool gives exactly what the inline executor gives."""

from __future__ import annotations

from edgenas.search.config import SearchConfig
from edgenas.search.evaluation import CandidateEvaluator
from edgenas.search.executor import InlineExecutor, ProcessExecutor
from edgenas.space import LDPSpace


def test_process_pool_matches_inline():
    config = SearchConfig(
        proxy_input=(32, 40), deploy_input=(32, 40), score_batch=8, target_latency_ms=None
    )
    genotypes = [
        g.encode() for g in LDPSpace(scales=(2,), channels=(8, 16)).sample_unique(3, seed=5)
    ]
    inline = InlineExecutor(CandidateEvaluator(config))
    pool = ProcessExecutor(config, workers=2, threads=1)
    try:
        assert pool.map("score", genotypes) == inline.map("score", genotypes)
        assert pool.map("static_resources", genotypes) == inline.map("static_resources", genotypes)
    finally:
        pool.close()
        inline.close()
