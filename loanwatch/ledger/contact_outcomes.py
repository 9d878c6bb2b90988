"""The vocabulary of a contact's ``outcome`` (``contact_logged``, SPEC §1), declared once.

SPEC §1 leaves ``outcome`` free: an event with any non-empty outcome is accepted and kept as
given. Rules that *name* outcomes (the compliance caps and cool-offs, treatment segments) must
name ones that are produced, else they silently never match: they are checked against this list
at start-up. The simulator, the collector API and the notifier produce these values; the shared
scenarios use the same words (``reached``, ``no_answer``).
"""

from __future__ import annotations

from typing import Final

#: A conversation with the borrower took place (the contact counted by "connected" caps).
CONVERSATION: Final = frozenset({"reached", "promised", "refused", "hardship", "disputed"})
#: An attempt that did not reach the borrower (a run of them makes one ``unreachable``).
UNANSWERED: Final = frozenset({"no_answer", "busy", "left_message", "wrong_number", "failed"})

CONTACT_OUTCOMES: Final[dict[str, str]] = {
    "reached": "spoke with the borrower",
    "promised": "spoke with the borrower, who promised to pay (a promise_to_pay follows)",
    "refused": "spoke with the borrower, who refused to pay",
    "hardship": "spoke with the borrower, who reported financial hardship",
    "disputed": "spoke with the borrower, who disputes the debt",
    "no_answer": "a call nobody answered",
    "busy": "the line was busy",
    "left_message": "voicemail or a message left with a third party",
    "wrong_number": "the number does not reach the borrower",
    "sent": "a message (SMS, email, letter) handed to the gateway",
    "delivered": "the gateway reports the message delivered",
    "failed": "the gateway reports the message undeliverable",
    "action_taken": "a collector carried out a treatment action (docs/strategies.md)",
    "action_refused": "a treatment action was refused (by the borrower or a supervisor)",
}


def is_known_outcome(outcome: str) -> bool:
    return outcome in CONTACT_OUTCOMES
