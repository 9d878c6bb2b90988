"""Early warning (issue 17): behaviour features kept per loan, a scorecard, pre-due alerts.

The layer runs beside the engine like the treatment layer: :mod:`.tracker` hooks in after each
engine call, keeps each loan's :class:`~.state.EWState` and emits ``pre_due_risk`` alerts.
Everything here is pure; training (:mod:`.train`) is the only module that imports scikit-learn,
and only when it runs. docs/early-warning.md is the behaviour's contract.
"""
