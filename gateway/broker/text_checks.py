"""The rules every string in a request obeys, checked by walking the message's descriptor.

One place for every RPC and every submitted content: the gRPC edge applies ``check_strings``
to each parsed request (gateway.server.request_checks), and the submission path to each
content, opened from its seal or given in clear, including the answers of partners' source
systems (gateway.broker.opened_content), so a new RPC or a new field cannot forget it.

- No string holds NUL or another control character (C0, DEL, C1): nothing an identifier,
  a purpose or a name needs, and PostgreSQL stores no NUL in text (the query fails rather
  than find nothing). Free text (reasons, notes, justifications, comments) may hold line
  breaks and tabs.
- Each string has a length limit in characters: ``DEFAULT_LIMIT`` unless the table below
  names the field. The use cases keep their own, often tighter, limits and shape checks;
  this is the floor under all of them.

A failure names the field by its path in the message (``subject.name``, ``fields[3]``),
never its value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.broker.errors import InvalidRequest

__all__ = ["DEFAULT_LIMIT", "FREE_TEXT_LIMIT", "check_strings"]

# Identifiers, codes, names, dates: short single-line strings.
DEFAULT_LIMIT = 256
# Free text: the case file's own limit on one entry (gateway.broker.casefile.MAX_TEXT_CHARS).
FREE_TEXT_LIMIT = 20_000

_FREE_TEXT = (
    "ketenpoort.v1.RegisterCaseRequest.reason",
    "ketenpoort.v1.RegisterCaseRequest.goal",
    "ketenpoort.v1.RegisterCaseContent.reason",
    "ketenpoort.v1.RegisterCaseContent.goal",
    "ketenpoort.v1.AddToCaseFileRequest.text",
    "ketenpoort.v1.AddToCaseFileContent.text",
    "ketenpoort.v1.DisclosureRequest.justification",
    "ketenpoort.v1.PlaceHoldRequest.reason",
    "ketenpoort.v1.CloseBreakGlassReviewRequest.comment",
    # A description of a person who cannot be identified otherwise (the use case keeps it to
    # gateway.broker.persons.MAX_DESCRIPTION_CHARS).
    "ketenpoort.v1.PersonInput.description",
    "ketenpoort.v1.RegisterCaseRequest.concerns",
    "ketenpoort.v1.RegisterCaseContent.concerns",
    # The plan of a case (plan.proto); the use cases keep tighter limits where they have one.
    "ketenpoort.v1.RecordMeetingRequest.minutes",
    "ketenpoort.v1.MeetingDecision.text",
    "ketenpoort.v1.AddPlanActionRequest.description",
    "ketenpoort.v1.UpdatePlanActionRequest.note",
    "ketenpoort.v1.CloseCaseRequest.closing_summary",
)
# Values a partner's source system answers with: whatever its record holds (a report, a
# list of incidents), bounded only by the message size limit.
_SOURCE_VALUES = (
    "ketenpoort.v1.FetchFieldsContent.ValuesEntry.value",
    "ketenpoort.v1.FetchFieldsResponse.ValuesEntry.value",
)
SOURCE_VALUE_LIMIT = 4 * 1024 * 1024
# A checkpoint a witness cosigned: a signed note of a few lines (C2SP signed-note), with one
# signature line per signer; as the witness desk's byte limit (MAX_NOTE_BYTES).
_SIGNED_NOTES = ("ketenpoort.v1.WitnessCheckpointRequest.cosigned_note",)
SIGNED_NOTE_LIMIT = 8192
# Full field name -> limit in characters, where DEFAULT_LIMIT does not fit.
LIMITS: Mapping[str, int] = {
    **dict.fromkeys(_FREE_TEXT, FREE_TEXT_LIMIT),
    **dict.fromkeys(_SOURCE_VALUES, SOURCE_VALUE_LIMIT),
    **dict.fromkeys(_SIGNED_NOTES, SIGNED_NOTE_LIMIT),
    "ketenpoort.v1.SubjectIdentity.address": 500,
}
FREE_TEXT = frozenset((*_FREE_TEXT, *_SOURCE_VALUES, *_SIGNED_NOTES))

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class _StringRule:
    limit: int
    forbidden: re.Pattern[str]


def check_strings(message: Message) -> None:
    """Raise InvalidRequest naming the first string field of ``message`` (nested messages,
    repeated fields and maps included) that breaks the rules."""
    _check(message, "")


def _check(message: Message, prefix: str) -> None:
    rules = _rules_of(message.DESCRIPTOR)
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            rule = rules[field.name]
            if field.is_repeated:
                for i, item in enumerate(value):
                    _check_text(item, rule, f"{path}[{i}]")
            else:
                _check_text(value, rule, path)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            assert field.message_type is not None
            if field.message_type.GetOptions().map_entry:
                _check_map(value, field, path)
            elif field.is_repeated:
                for i, item in enumerate(value):
                    _check(item, f"{path}[{i}].")
            else:
                _check(value, path + ".")


def _check_map(value: Mapping[object, object], field: FieldDescriptor, path: str) -> None:
    entry = field.message_type
    assert entry is not None
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    key_rule = _rule(key_field)
    for key, item in value.items():
        if isinstance(key, str):
            _check_text(key, key_rule, f"{path} key")
        if value_field.type == FieldDescriptor.TYPE_STRING:
            assert isinstance(item, str)
            _check_text(item, _rule(value_field), f"{path} value")
        elif isinstance(item, Message):
            _check(item, f"{path} value.")


def _check_text(text: str, rule: _StringRule, path: str) -> None:
    if len(text) > rule.limit:
        raise InvalidRequest(f"{path} is longer than {rule.limit} characters")
    if rule.forbidden.search(text):
        raise InvalidRequest(f"{path} holds a NUL or another control character")


@cache
def _rules_of(descriptor: Descriptor) -> dict[str, _StringRule]:
    """The rule of each string field of one message type, worked out once per type."""
    return {
        f.name: _rule(f) for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING
    }


@cache
def _rule(field: FieldDescriptor) -> _StringRule:
    name = field.full_name
    forbidden = _CONTROL_BUT_LINES if name in FREE_TEXT else _CONTROL
    return _StringRule(LIMITS.get(name, DEFAULT_LIMIT), forbidden)
