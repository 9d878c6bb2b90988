"""Kafka's default partitioner (murmur2 of the key bytes), so every client agrees on partitions.

aiokafka and the Java clients both use it: a message keyed by ``loan_id`` lands on
``partition_for(loan_id, n)`` whoever produced it, which keeps the input topics, the internal
topics and the tables co-partitioned.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(key: str, partitions: int) -> int:
    """The partition a key lands on among ``partitions`` (positive murmur2 modulo n)."""
    digest: int = murmur2(key.encode("utf-8"))
    return (digest & 0x7FFFFFFF) % partitions
