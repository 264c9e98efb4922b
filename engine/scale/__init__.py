"""Scale-out on Dask: the same commands when data or experiments outgrow one machine.

- :mod:`engine.scale.cluster`: :func:`connect` to a Dask scheduler (or a ``LocalCluster``).
- :mod:`engine.scale.shards`: read the Parquet export (``dunning export --parquet``) one
  customer shard at a time, so every shard holds its customers' complete history.
- :mod:`engine.scale.train`: distributed training with ``lightgbm.dask``.
- :mod:`engine.scale.score`: distributed scoring, shard by shard (``map_partitions``).

Simulation and evaluation sweeps live in :mod:`simulations.evaluation.distributed`.
Heavy imports (dask, lightgbm) happen inside the functions.
"""
