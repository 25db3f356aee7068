"""Classified free text in the case file (item 7 of the covenant's free-text rules).

A partner that writes free text into the case file says what kind of data it holds:
``ordinary``, ``health`` (AVG art. 9), ``criminal`` (AVG art. 10) or ``confidential``. The
text is stored under the catalogue field for its class, so the policy decides it as that
field (a health note reaches only partner types with a ground for health data):

    case.notes            + health       -> case.notes.health
    case.notes            + criminal     -> case.notes.criminal
    case.notes            + confidential -> case.notes.confidential
    (the same for case.reason, case.concerns and case.meeting_minutes)

``confidential`` entries are released only to the partner that wrote them, whatever the
policy says (``release_to``). This module is the one place that maps a field and class to
the stored field: field ids outside the catalogue are accepted only through it.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from gateway.broker.errors import InvalidRequest, choice_of


class TextClassification(StrEnum):
    ORDINARY = "ordinary"
    HEALTH = "health"
    CRIMINAL = "criminal"
    CONFIDENTIAL = "confidential"


# The case-file fields whose free text is classified.
CLASSIFIED_FIELDS = frozenset(
    {"case.notes", "case.reason", "case.concerns", "case.meeting_minutes"}
)
CONFIDENTIAL_SUFFIX = "." + TextClassification.CONFIDENTIAL.value


def classification_of(text: str) -> TextClassification:
    """The class spelled ``text`` (ordinary when empty); INVALID_ARGUMENT otherwise."""
    return choice_of(
        TextClassification, "classification", text, default=TextClassification.ORDINARY
    )


def classified_field(field: str, classification: TextClassification) -> str:
    """The field an entry of ``field`` in ``classification`` is stored under."""
    if classification is TextClassification.ORDINARY:
        return field
    if field not in CLASSIFIED_FIELDS:
        raise InvalidRequest(
            f"only {', '.join(sorted(CLASSIFIED_FIELDS))} take a classification other than "
            "ordinary"
        )
    return f"{field}.{classification.value}"


def all_classified(fields: Collection[str]) -> frozenset[str]:
    """Every stored field the classified ``fields`` may map to (for the writable set)."""
    return frozenset(
        classified_field(f, c) for f in fields for c in TextClassification
    )


def is_confidential(field: str) -> bool:
    return field.endswith(CONFIDENTIAL_SUFFIX) and field[: -len(CONFIDENTIAL_SUFFIX)] in (
        CLASSIFIED_FIELDS
    )


def release_to(field: str, written_by: str, recipient: str | None) -> bool:
    """Whether an entry of ``field`` written by ``written_by`` may reach ``recipient``
    (None: the gateway itself reads it, e.g. to ask a source). A confidential entry reaches
    only its author; every other entry is for the policy to decide."""
    if recipient is None or not is_confidential(field):
        return True
    return written_by == recipient
