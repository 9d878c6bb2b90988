"""loanwatch: real-time loan delinquency monitoring.

The pure domain engine lives in :mod:`loanwatch.ledger`; everything that does I/O
(Kafka, Redis, Prometheus, HTTP) lives around it and calls into it.
"""

__version__ = "0.1.0"
