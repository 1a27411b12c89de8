"""Stages 1–2 of MultiPL-T: Python functions with docstrings, filtered and decontaminated.

The pieces, in the order a shard runs them:

* :mod:`.local` and :mod:`.stack` list the input (source trees on disk, or The Stack's parquet
  files on the Hub or a mirror) and :mod:`.plan` splits it into a fixed number of shards;
* :mod:`.extract` reads each file and yields its top-level functions, counting files that are
  binary, undecodable, too large or not Python 3;
* :mod:`.filters` holds the cheap per-function filters and exact deduplication,
  :mod:`.typecheck` the pyright check run in batches, :mod:`.decontaminate` the benchmark
  matching against the corpus built by :mod:`.benchmarks`;
* :mod:`.funnel` counts what each step kept, per shard and in total;
* :mod:`.pipeline` strings them together and :mod:`.cli` is what the Snakemake rules call.
"""
