"""editbench: a reproducibility benchmark suite and leaderboard harness for instruction-based
image editing. The public core is ``benchmark.api``; everything else is reached through the
registries in ``benchmark.registry`` and the ``editbench`` command line."""

__version__ = "0.1.0"
