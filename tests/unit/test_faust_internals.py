"""The private names ``agents/faust_internals.py`` reads exist in the installed (pinned)
faust-streaming, aiokafka and prometheus_client: an upgrade that renames one fails here, by
name, instead of somewhere in a worker."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import aiokafka
import faust.streams
import prometheus_client.metrics
import pytest
from aiokafka.producer.message_accumulator import MessageAccumulator
from faust.stores.rocksdb import Store
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from prometheus_client import CollectorRegistry, Gauge

from loanwatch.agents import faust_internals

pytestmark = pytest.mark.unit


def assigns(method: object, *names: str) -> None:
    source = inspect.getsource(method)  # type: ignore[arg-type]
    for name in names:
        assert f"self.{name}" in source, f"{method!r} no longer sets self.{name}"


def test_faust_private_names_exist() -> None:
    assert hasattr(faust.streams, "_current_event")
    assert callable(faust_aiokafka.Producer._ensure_producer)
    assert callable(Store._db_for_partition)
    assigns(Store.__init__, "_key_index")
    assigns(faust_consumer.Consumer.__init__, "_read_offset", "_buffered_partitions")
    assigns(faust_consumer.Consumer.__init__, "_committed_offset")
    assert "self._thread" in inspect.getsource(faust_aiokafka.Consumer)
    assert "self._consumer" in inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread)


def test_aiokafka_private_names_exist() -> None:
    assigns(aiokafka.AIOKafkaProducer.__init__, "_message_accumulator")
    assigns(aiokafka.AIOKafkaConsumer.__init__, "_client")
    assigns(MessageAccumulator.__init__, "_batch_size", "_compression_type")
    assert callable(MessageAccumulator.create_builder)


def test_prometheus_metric_name_and_help() -> None:
    assigns(prometheus_client.metrics.MetricWrapperBase.__init__, "_name", "_documentation")
    gauge = Gauge("x_seconds", "help text", registry=CollectorRegistry())
    assert faust_internals.metric_name_and_help(gauge) == ("x_seconds", "help text")


def test_the_adapter_reads_what_a_consumer_has() -> None:
    tp = faust_internals.TP("t", 0)
    consumer = SimpleNamespace(
        _read_offset={tp: 7}, _buffered_partitions={tp}, _committed_offset={tp: 5}
    )
    assert faust_internals.read_offset(consumer, tp) == 7
    assert faust_internals.committed_offset(consumer, tp) == 5
    assert faust_internals.buffer_stopped(consumer) == {tp}
    assert faust_internals.read_offset(SimpleNamespace(), tp) is None


def test_the_fetch_loop_reads_the_read_offsets_through_getitem() -> None:
    """``faust_fixes.deliver_rereads`` relies on it: the loop binds ``__getitem__`` to drop a
    record below the last one delivered and to record gaps (None: neither)."""
    source = inspect.getsource(faust_consumer.Consumer._drain_messages)
    assert "get_read_offset = self._read_offset.__getitem__" in source
    assert "if r_offset is None or offset >= r_offset:" in source
    assert "if gap > 1 and r_offset:" in source


def test_read_offsets_never_drop_a_record_but_keep_their_values() -> None:
    from loanwatch.agents.faust_fixes import _ReadOffsets

    tp = faust_internals.TP("t", 0)
    consumer = SimpleNamespace(_read_offset={tp: 3})
    faust_internals.set_read_offsets(consumer, _ReadOffsets())
    offsets = consumer._read_offset
    assert offsets[tp] is None and offsets[faust_internals.TP("t", 9)] is None  # the loop's view
    assert faust_internals.read_offset(consumer, tp) == 3  # everyone else's
    offsets[tp] = 8
    assert offsets.get(tp) == 8
