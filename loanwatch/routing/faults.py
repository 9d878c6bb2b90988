"""Which exceptions mean "Redis cannot take our writes now" (retry later, nothing is wrong with
the record) as opposed to a bad record or a bug (dead-letter the record and move on).

Every loop of ``routes serve`` asks :func:`redis_fault`: a Redis fault degrades the service
(stop consuming, retry with backoff, ``/healthz`` says why) instead of crashing it or throwing
the record away. Pure: only classifies.
"""

from __future__ import annotations

import re

from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Reason labels of a Redis fault (bounded: they are metric label values).
FAULT_REASONS = ("unavailable", "timeout", "oom", "misconf", "readonly", "auth", "refused")

_CODES = (
    ("OOM", "oom"),
    ("MISCONF", "misconf"),
    ("READONLY", "readonly"),
    ("NOAUTH", "auth"),
    ("WRONGPASS", "auth"),
    ("NOPERM", "auth"),
    ("LOADING", "unavailable"),
    ("MASTERDOWN", "unavailable"),
    ("BUSY", "unavailable"),
    ("TRYAGAIN", "unavailable"),
    ("CLUSTERDOWN", "unavailable"),
)
# redis-py strips the code of the errors it maps to a class (OOM -> OutOfMemoryError, ...) and
# rewrites a pipeline's error message ("Command # 1 (...) of pipeline caused error: ..."), so
# the class is asked first, then the code it kept, then the code anywhere in the text.
_CLASSES = (
    (OutOfMemoryError, "oom"),
    (ReadOnlyError, "readonly"),
    (NoPermissionError, "auth"),
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
        for cls, reason in _CLASSES:
            if isinstance(exc, cls):
                return reason
        code = str(getattr(exc, "status_code", "") or "")
        text = f"{code} {exc}"
        for prefix, reason in _CODES:
            if re.search(rf"\b{prefix}\b", text):
                return reason
        return "refused"
    return None
