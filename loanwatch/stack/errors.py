"""Errors of the local stack. Each docstring tells the operator what to do."""

from __future__ import annotations


class StackError(RuntimeError):
    """The local stack could not be brought to the requested state; the message says why."""


class InstallError(StackError):
    """A package (apt) or the Kafka jars (Maven) could not be installed.

    Check that apt and Maven Central are reachable and that no other apt run holds the lock
    for more than ten minutes, then run ``loanwatch stack up`` again.
    """


class PortBusyError(StackError):
    """A port of the stack is served by a process the stack did not start.

    Stop that process (``ss -ltnp`` shows it) or stop the other stack, then run ``up`` again.
    """


class ServiceFailedError(StackError):
    """A service did not become ready in time. Read the log named in the message."""

    def __init__(self, service: str, log_path: str, tail: str, reason: str) -> None:
        self.service = service
        self.log_path = log_path
        self.tail = tail
        super().__init__(
            f"{service} failed to start: {reason}\nlog: {log_path}\n--- last lines ---\n{tail}"
        )
