"""Connecting to a Dask cluster: ``--cluster ADDRESS|local``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import DunningError

if TYPE_CHECKING:
    from distributed import Client


@dataclass
class LocalClusterConfig:
    """Shape of the ``LocalCluster`` started for ``--cluster local``.

    ``n_workers`` worker processes with ``threads_per_worker`` threads each;
    ``memory_limit`` per worker ("auto" = the machine's memory / n_workers): above ~60 % a
    worker spills to disk, which is what lets data larger than memory through.
    """

    n_workers: int = 2
    threads_per_worker: int = 1
    processes: bool = True
    memory_limit: str = "auto"
    dashboard: bool = False  # True: the dashboard on :8787; else on a free port


@contextmanager
def connect(address: str, local: LocalClusterConfig | None = None,
            timeout: float = 10.0) -> Iterator[Client]:
    """A ``distributed.Client`` for ``address``; closed (and a local cluster stopped) on exit.

    ``address`` is ``local`` (start a ``LocalCluster`` shaped by ``local``) or a scheduler
    address such as ``tcp://10.0.0.5:8786`` (``dask scheduler`` prints it). An unreachable
    scheduler raises :class:`DunningError` naming the address, not a stack trace.
    """
    from distributed import Client, LocalCluster

    address = address.strip()
    if not address:
        raise DunningError("--cluster: empty address; expected `local` or a scheduler address "
                           "such as tcp://HOST:8786")
    if address.lower() == "local":
        cfg = local or LocalClusterConfig()
        cluster = LocalCluster(n_workers=cfg.n_workers, threads_per_worker=cfg.threads_per_worker,
                               processes=cfg.processes, memory_limit=cfg.memory_limit,
                               dashboard_address=":8787" if cfg.dashboard else ":0")
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    if "://" not in address and ":" not in address:
        raise DunningError(f"--cluster {address}: expected `local` or a scheduler address "
                           "HOST:PORT (e.g. tcp://10.0.0.5:8786)")
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise DunningError(f"--cluster {address}: cannot reach a Dask scheduler there ({exc}); "
                           "start one with `dask scheduler` and workers with "
                           f"`dask worker {address}`") from None
    try:
        yield client
    finally:
        client.close()


def n_workers(client: Client) -> int:
    """Number of workers currently connected (at least 1)."""
    return max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
