"""Names of the notification streams: the outbox the router writes, and one lane per channel
the notifier moves each entry to, so that a slow or dead gateway holds up its own channel only.

Pure naming; shared by the router (back-pressure), the notifier and housekeeping (trimming).
"""

from __future__ import annotations

LANES = ("sms", "email", "webhook", "alertmanager")
OTHER = "other"  # an entry of no known channel: its lane dead-letters it


def outbox(prefix: str) -> str:
    return f"{prefix}outbox"


def lane(prefix: str, channel: str) -> str:
    return f"{prefix}lane:{channel if channel in LANES else OTHER}"


def all_streams(prefix: str) -> list[str]:
    return [outbox(prefix), *(lane(prefix, c) for c in (*LANES, OTHER))]
