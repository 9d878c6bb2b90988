"""``loanwatch report portfolio``: a past business day's portfolio figures, from the audit trail.

``source`` (the audited chains and their inputs, from the archive or Kafka), ``book`` (the
inputs replayed through the worker's own ledger up to the end of a day, pure), ``figures``
(classification, migration, PAR, NPL, roll and cure rates, IFRS 9 stages: the definitions of
the live gauges and recording rules), ``csv_out`` and ``html`` (the outputs), ``cli``.
docs/audit.md ("Portfolio report") describes them.
"""
