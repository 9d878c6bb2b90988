"""Errors of alert routing. Each docstring tells the operator what to do.

Never raised for a single bad alert in the live service: those are logged and skipped by the
router; these exceptions stop start-up or a CLI command.
"""

from __future__ import annotations


class RoutingError(Exception):
    """Base class of routing errors; the message says what went wrong."""


class ConfigError(RoutingError, ValueError):
    """A routing, schedule or compliance config file is invalid.

    The message names the file, the key and the bad value: fix it and run
    ``loanwatch routes test`` (or restart the router) again.
    """


class AlertFormatError(RoutingError, ValueError):
    """An alert on ``loan.alerts`` does not have the SPEC §6 shape.

    The router logs it with its offset and moves on; fix the producer named in the log.
    """


class WorkItemError(RoutingError):
    """A work-item operation was refused (unknown item, wrong state or not yours).

    The message says which; reload the queue and retry the action on a current item.
    """


class DeliveryError(RoutingError):
    """A notification could not be delivered (gateway, SMTP or webhook failure).

    Retried with backoff; after the last retry the send goes to the dead-letter stream.
    Check the gateway named in the message.
    """
