"""``loanwatch worker``: run one Faust worker (several can share the partitions)."""

from __future__ import annotations

from pathlib import Path

import click

from loanwatch.agents.settings import WorkerSettings


@click.command()
@click.option(
    "--clock", type=click.Choice(["event", "wall"]), help="Business clock (default: policy)."
)
@click.option("--web-port", type=int, help="HTTP port (default 6066).")
@click.option("--app-id", help="Faust app id / consumer group (default loanwatch).")
@click.option("--topic-prefix", help="Prefix of every topic name.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where RocksDB tables live.")
@click.option("--partitions", type=int, help="Partitions of every topic (default 8).")
@click.option("--broker", help="Kafka URL (default kafka://127.0.0.1:9092).")
@click.option("--store", help="Table store URL (default rocksdb://).")
@click.option(
    "--config", "config_dir", type=click.Path(path_type=Path), help="Folder with policy.yaml."
)
@click.option(
    "--strategies",
    "strategies_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="strategies.yaml: keep segments, send segment_changed / treatment_action alerts.",
)
@click.option(
    "--early-warning",
    "early_warning_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="early_warning.yaml: score loans before due dates, send pre_due_risk alerts.",
)
@click.option("--loglevel", default="info", show_default=True)
def worker(**options: object) -> None:
    """Consume the loan topics, keep per-loan state, emit alerts and dead letters."""
    import faust

    from loanwatch.agents.app import build_worker

    given = {k: v for k, v in options.items() if v is not None and k != "loglevel"}
    settings = WorkerSettings(**given)  # type: ignore[arg-type]
    built = build_worker(settings)
    from loanwatch.gc_tuning import tune_gc

    tune_gc()  # after start-up imports and wiring; see loanwatch/gc_tuning.py
    # No terminal spinner: Faust's spinner handler puts the root logger at DEBUG, and then
    # every debug call in aiokafka and Faust builds a log record on the hot path.
    worker_ = faust.Worker(built.app, loglevel=str(options["loglevel"]), quiet=True)
    worker_.spinner = None
    worker_.execute_from_commandline()
