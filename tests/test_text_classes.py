"""The one mapping from a case-file field and a free-text class to the field stored, and the
broker's rule that a confidential entry reaches only its author."""

from __future__ import annotations

import pytest

from gateway.broker.errors import InvalidRequest
from gateway.broker.text_classes import (
    TextClassification,
    classification_of,
    classified_field,
    is_confidential,
    release_to,
)


@pytest.mark.parametrize(
    ("field", "klass", "stored"),
    [
        ("case.notes", "", "case.notes"),
        ("case.notes", "ordinary", "case.notes"),
        ("case.notes", "health", "case.notes.health"),
        ("case.reason", "criminal", "case.reason.criminal"),
        ("case.concerns", "confidential", "case.concerns.confidential"),
        ("case.meeting_minutes", "health", "case.meeting_minutes.health"),
        ("case.goal", "ordinary", "case.goal"),
    ],
)
def test_each_class_has_its_field(field: str, klass: str, stored: str) -> None:
    assert classified_field(field, classification_of(klass)) == stored


@pytest.mark.parametrize("text", ["secret", "HEALTH", " health", "art9"])
def test_an_unknown_class_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match="classification must be one of"):
        classification_of(text)


def test_only_free_text_fields_take_a_class() -> None:
    with pytest.raises(InvalidRequest):
        classified_field("case.goal", TextClassification.HEALTH)


def test_a_confidential_entry_reaches_only_its_author() -> None:
    assert is_confidential("case.notes.confidential")
    assert not is_confidential("case.notes") and not is_confidential("x.confidential")
    assert release_to("case.notes.confidential", "ggz", "ggz")
    assert not release_to("case.notes.confidential", "ggz", "police")
    # The gateway itself (no recipient) and other fields are for the policy to decide.
    assert release_to("case.notes.confidential", "ggz", None)
    assert release_to("case.notes.health", "ggz", "police")
