"""Replaying the accountability log under a new policy: which past decisions would change.

Each disclosure, triage and refusal record names the partner, role, purpose, phase, the
fields asked and, per field, what was released. The same request is decided again under the
new policy and the outcomes compared, per partner and field:

- released before, withheld now ("would now be withheld");
- withheld before, released now ("would now be released");
- released both times, but differently ("would now be shown differently": disclosed instead
  of masked, masked instead of disclosed, or another transform).

What the log does not hold is taken from what it does: the partner took part in the case
unless the record is a refusal for not taking part; a justification was given when the
record names one (break-glass). Records name a mask's transform but not its parameters, so
a changed parameter alone is not seen. A record that cannot be decided again (its purpose,
partner, role or phase is gone from the policy; the gateway refused it before or outside
the policy; it was refused because break-glass access had expired, and the record does not
hold how long that access had been in use) is counted, with the reason, and never guessed at.
Fields no longer in the catalogue count as withheld now. Nothing is written to the log and no
value is read: records hold none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.broker.log_events import AuditEvent, RecordKind
from gateway.cli.policy_output import plural
from gateway.core import AccessRequest, CompiledPolicy, Effect, RefusalCode, RequestError
from gateway.store import AuditLog, StoreError, create_engine_for

# Records of requests the policy decided; registrations, invitations, phase changes and
# notes are changes to the case file, not decisions.
DECISION_KINDS = (RecordKind.DISCLOSURE, RecordKind.TRIAGE, RecordKind.REFUSAL)
_PAGE = 5000
_POLICY_REFUSALS = frozenset(code.value for code in RefusalCode)
BREAK_GLASS_EXPIRED = ("refused because break-glass access had expired; the record does not "
                       "hold how long break-glass access had been in use")

NOW_WITHHELD = "would now be withheld"
NOW_RELEASED = "would now be released"
SHOWN_DIFFERENTLY = "would now be shown differently"
CHANGES = (NOW_WITHHELD, NOW_RELEASED, SHOWN_DIFFERENTLY)

# How a record names an outcome, and the same outcome as the policy decides it.
_RELEASED = frozenset({"disclosed", "masked"})
_OUTCOME_OF_EFFECT = {Effect.DISCLOSE: "disclosed", Effect.MASK: "masked",
                      Effect.WITHHOLD: "withheld"}


class LogUnreadable(Exception):
    """The accountability log named on the command line cannot be read."""


@dataclass
class Replay:
    """Counts only: partner ids, field ids and reasons, never a value or a subject."""

    new_version: str
    records_read: int = 0
    replayed: int = 0
    changed_records: int = 0
    now_refused: int = 0
    now_permitted: int = 0
    per_field: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    not_replayed: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)

    def render(self) -> Iterator[str]:
        yield f"accountability log replayed under the new policy {self.new_version}"
        versions = ", ".join(f"{count} under {version}"
                             for version, count in self.versions.most_common())
        yield (f"  {plural(self.records_read, 'decision record')} read"
               f"{f' ({versions})' if versions else ''}")
        yield (f"  {self.replayed} replayed, {sum(self.not_replayed.values())} could not be "
               f"replayed")
        yield (f"  {plural(self.changed_records, 'record')} would come out differently; "
               f"{self.now_refused} permitted requests would now be refused, "
               f"{self.now_permitted} refused requests would now be permitted")
        if self.per_field:
            yield ""
            yield "  past decisions that would come out differently, per partner and field:"
            width = max(len(f) for _, f, _ in self.per_field)
            for (partner, field_id, change), count in sorted(self.per_field.items()):
                yield f"    {partner:<16} {field_id:<{width}}  {count:>5}  {change}"
        if self.not_replayed:
            yield ""
            yield "  records that could not be replayed:"
            for reason, count in self.not_replayed.most_common():
                yield f"    {count:>5}  {reason}"

    def as_json(self) -> dict[str, Any]:
        return {
            "new_version": self.new_version,
            "records_read": self.records_read,
            "replayed": self.replayed,
            "changed_records": self.changed_records,
            "now_refused": self.now_refused,
            "now_permitted": self.now_permitted,
            "versions": dict(self.versions),
            "per_field": [{"partner": p, "field": f, "change": c, "count": n}
                          for (p, f, c), n in sorted(self.per_field.items())],
            "not_replayed": dict(self.not_replayed),
        }


def log_url(location: str) -> str:
    """A database URL for a SQLAlchemy URL or a path to a SQLite file (which must exist)."""
    if "://" in location:
        return location
    path = Path(location).expanduser()
    if not path.is_file():
        # Opening a missing SQLite file would create an empty log and report nothing.
        raise LogUnreadable(f"{location}: no such log database")
    return f"sqlite:///{path.resolve()}"


def _shown(location: str) -> str:
    """The log's name for a message, without a password a URL may carry."""
    try:
        return make_url(location).render_as_string(hide_password=True)
    except ArgumentError:
        return location if "://" not in location else "the database URL given"


def read_events(location: str) -> Iterator[AuditEvent]:
    """Every decision record of the log, oldest first."""
    try:
        engine = create_engine_for(log_url(location))
    except (ValueError, ArgumentError) as exc:
        raise LogUnreadable(f"{_shown(location)}: not a usable database URL ({exc})") from None
    try:
        log = AuditLog(engine)
        after = 0
        while True:
            try:
                page = log.list_records(kinds=DECISION_KINDS, after_seq=after, limit=_PAGE)
            except StoreError:
                raise LogUnreadable(f"{_shown(location)}: cannot read an accountability log "
                                    "there (no such database, no access, or no log table)"
                                    ) from None
            for record in page:
                yield record.event
            if len(page) < _PAGE:
                return
            after = page[-1].seq
    finally:
        engine.dispose()


def replay_log(location: str, policy: CompiledPolicy) -> Replay:
    replay = Replay(policy.version)
    for event in read_events(location):
        replay.records_read += 1
        replay.versions[event.policy_version] += 1
        reason = _replay_event(replay, policy, event)
        if reason is not None:
            replay.not_replayed[reason] += 1
    return replay


def _replay_event(replay: Replay, policy: CompiledPolicy, event: AuditEvent) -> str | None:
    """Compare one record with the new policy's decision; the reason when it cannot be."""
    code = event.refusal_code
    if code and code not in _POLICY_REFUSALS:
        return f"refused by the gateway before or outside the policy ({code})"
    if code == RefusalCode.BREAK_GLASS_EXPIRED:
        # Replaying without the elapsed time would reopen the purpose and count a change.
        return BREAK_GLASS_EXPIRED
    before: dict[str, tuple[str, str | None]] = {}
    for entry in event.fields:  # a triage record repeats its one field per source asked
        before.setdefault(entry.field, (entry.outcome, entry.transform))
    if not before:
        return "the record names no fields"
    known = {spec.id for spec in policy.fields}
    request = AccessRequest(
        partner_id=event.partner_id, role=event.role, purpose=event.purpose, phase=event.phase,
        participant=code != RefusalCode.NOT_PARTICIPANT,
        fields=tuple(f for f in before if f in known),
        justification="on record" if event.justification_ref else "")
    after: dict[str, tuple[str, str | None]] = {}
    now_refused = False
    if request.fields:
        try:
            decision = policy.decide(request)
        except RequestError as exc:
            return f"{exc.kind} {exc.ref!r} is not in the new policy"
        now_refused = decision.refusal is not None
        if not now_refused:
            after = {d.field: (_OUTCOME_OF_EFFECT[d.effect], d.transform)
                     for d in decision.fields}
    else:
        now_refused = True  # every field asked is gone from the catalogue
    replay.replayed += 1
    was_refused = bool(code)
    replay.now_refused += (not was_refused) and now_refused
    replay.now_permitted += was_refused and not now_refused
    changed = False
    for field_id, old in before.items():
        change = _change(old, after.get(field_id, ("withheld", None)))
        if change is not None:
            changed = True
            replay.per_field[(event.partner_id, field_id, change)] += 1
    replay.changed_records += changed
    return None


def _change(old: tuple[str, str | None], new: tuple[str, str | None]) -> str | None:
    was, now = old[0] in _RELEASED, new[0] in _RELEASED
    if was and not now:
        return NOW_WITHHELD
    if now and not was:
        return NOW_RELEASED
    if was and old != new:
        return SHOWN_DIFFERENTLY
    return None
