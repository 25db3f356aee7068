"""A logged field decision as the values the contract's field messages carry (LoggedField for
privacy officers, ExportedField for a partner's export): the same six, in the shared enums."""

from __future__ import annotations

from typing import Any

from gateway.broker.log_events import FieldEntry
from gateway.broker.records import OUTCOME_OF_EFFECT
from gateway.broker.sealed_record import AVAILABILITY, OUTCOME
from gateway.core import Effect

# Log records name outcomes as words ("masked"); the contract uses the shared enums.
_OUTCOME = {OUTCOME_OF_EFFECT[effect]: OUTCOME[effect] for effect in Effect}


def field_values(f: FieldEntry) -> dict[str, Any]:
    return {
        "field": f.field,
        "category": f.category,
        "outcome": _OUTCOME[f.outcome],
        "transform": f.transform or "",
        "availability": AVAILABILITY[f.availability],
        "source": f.source,
    }
