"""Which exceptions mean "Redis cannot take our writes now" (retry later, nothing is wrong with
the record) as opposed to a bad record or a bug (dead-letter the record and move on).

Every loop of ``routes serve`` asks :func:`redis_fault`: a Redis fault degrades the service
(stop consuming, retry with backoff, ``/healthz`` says why) instead of crashing it or throwing
the record away. Pure: only classifies.
"""

from __future__ import annotations

from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Reason labels of a Redis fault (bounded: they are metric label values).
FAULT_REASONS = ("unavailable", "timeout", "oom", "misconf", "readonly", "auth", "refused")

_RESPONSE_PREFIXES = (
    ("OOM", "oom"),
    ("MISCONF", "misconf"),
    ("READONLY", "readonly"),
    ("NOAUTH", "auth"),
    ("WRONGPASS", "auth"),
    ("NOPERM", "auth"),
    ("LOADING", "unavailable"),
    ("MASTERDOWN", "unavailable"),
    ("BUSY ", "unavailable"),
    ("TRYAGAIN", "unavailable"),
    ("CLUSTERDOWN", "unavailable"),
)


def redis_fault(exc: BaseException) -> str | None:
    """The fault reason when ``exc`` says Redis refused or could not serve a command, else None.

    Any ``ResponseError`` counts (a refused write is never the record's fault): the known ones
    get their own reason, the rest ``refused``.
    """
    if isinstance(exc, AuthenticationError):
        return "auth"
    if isinstance(exc, RedisTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, RedisConnectionError | ConnectionError | OSError):
        return "unavailable"
    if isinstance(exc, ResponseError):
        text = str(exc).lstrip()
        for prefix, reason in _RESPONSE_PREFIXES:
            if text.startswith(prefix):
                return reason
        return "refused"
    return None
