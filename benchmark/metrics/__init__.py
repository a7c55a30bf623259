"""Metrics: one module per metric, each a functional core plus a stateful class.

Keys and conventions are listed in DESIGN.md section 4; every class is registered by key in
``benchmark.registry.METRICS``.
"""

from benchmark.metrics.base import Metric, MetricInput

__all__ = ["Metric", "MetricInput", "get_metric"]


def get_metric(key: str) -> Metric:
    from benchmark.registry import METRICS

    return METRICS.get(key)()
