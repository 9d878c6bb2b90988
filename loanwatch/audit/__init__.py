"""The auditor's trail: a hash chain per partition of everything the ledger did, signed.

``chain`` (the record format and the chain, pure), ``keys`` (Ed25519 signing keys),
``trail`` (the live hook the ledger stage calls), ``verify`` and ``replay`` (what an auditor
runs), ``kafka_io`` (reading the audit and input topics). docs/audit.md describes the format.
Nothing here may change what the ledger decides: the trail only observes it.
"""
