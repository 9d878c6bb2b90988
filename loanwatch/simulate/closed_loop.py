"""The simulator with a treatment strategy in the loop: ``loanwatch simulate --strategies``.

Every emitted event goes, as it is emitted, through an engine and the treatment tracker
(exactly what ``loanwatch replay --strategies`` runs); each ``treatment_action`` alert is handed
back to the simulator, which carries the action out the next business day and lets the
borrower's hidden profile react (:mod:`loanwatch.simulate.respond`). So later events, and the
outcomes, depend on the strategy. The engine sees only events: the profile never leaves the
simulator. Deterministic: the same config, strategies and policy give the same bytes.

An ``observer`` (the closed-loop backtest's KPIs) is called after each event with the event,
the loan's treatment state before it, and the engine's output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from loanwatch.ledger.engine import Engine, Output
from loanwatch.ledger.policy import Policy
from loanwatch.simulate.config import SimulationConfig
from loanwatch.simulate.events import Emitted
from loanwatch.simulate.generator import Simulation
from loanwatch.treatment.model import Strategies
from loanwatch.treatment.state import TreatmentState
from loanwatch.treatment.tracker import Treatment

Observer = Callable[[dict[str, Any], TreatmentState | None, Output], None]


class ClosedLoop:
    """Iterate once: the events of a simulation whose borrowers answer the strategy."""

    def __init__(
        self,
        config: SimulationConfig,
        strategies: Strategies,
        policy: Policy,
        observer: Observer | None = None,
    ) -> None:
        self.sim = Simulation(config, keep_loans=True)
        self.engine = Engine(policy)
        self.treatment = Treatment(strategies, policy)
        self.observer = observer

    @property
    def stats(self) -> Counter[str]:
        return self.sim.stats

    def __iter__(self) -> Iterator[Emitted]:
        for item in self.sim:
            yield item  # written before the engine sees it (the engine never changes it)
            self._feed(item)

    def _feed(self, item: Emitted) -> None:
        if isinstance(item, bytes):
            self.engine.process_raw(item)  # a deliberately bad line: dead-lettered
            return
        loan_id = item.get("loan_id")
        before = self.treatment.states.get(loan_id) if isinstance(loan_id, str) else None
        out = self.engine.process(item)
        self.treatment.observe(self.engine, item, out)
        for alert in out.alerts:
            if alert.kind == "treatment_action":
                self.sim.act(int(alert.loan_id[1:]) - 1, str(alert.extra["action"]))
        if self.observer is not None:
            self.observer(item, before, out)
