"""`ketenpoort policy explain`: why a partner gets what it gets, field by field.

For one (partner or partner type, role, purpose, phase), in an approach (``--approach``,
default the policy's default approach) and for a person role (``--person-role``, default a
case-level request where rules with ``persons:`` do not apply), it prints, per field, the outcome,
the rule that decided it with its place and reason, and every other rule that matched and
why it lost. Participation in the case is assumed, as it is for a partner that takes part.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.cli.policy_output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    SPECIAL_LABELS,
    effect_text,
    load_or_report,
    one_line,
    permits_text,
    place,
    report_unknown,
    unknown_id,
    wrapped,
)
from gateway.core import CompiledPolicy, FieldExplanation, RefusalCode, RequestError, RuleRef


@dataclass(frozen=True, slots=True)
class ExplainQuery:
    """What the privacy officer asks about; exactly one of ``partner`` or ``partner_type``."""

    partner: str | None
    partner_type: str | None
    role: str
    purpose: str
    phase: str
    field: str | None = None
    approach: str = ""
    person_role: str = ""


def run_explain(directory: Path, query: ExplainQuery) -> int:
    loaded = load_or_report(directory, "explain")
    if isinstance(loaded, int):
        return loaded
    if report_unknown("explain", _unknown_ids(loaded, query)):
        return EXIT_USAGE
    print(f"policy {directory} (version {loaded.version})")
    partner_type = query.partner_type
    if query.partner is not None:
        partner = loaded.partner(query.partner)
        partner_type = partner.type
        print(f"partner {partner.id} ({partner.display_name}), partner type {partner_type}")
        if query.role not in partner.roles:
            _print_refusal(f"partner {partner.id!r} may not act in role {query.role!r}; it acts "
                           f"as {', '.join(partner.roles)}", "role_not_allowed")
            return EXIT_FAILED
    else:
        print(f"partner type {partner_type}")
    assert partner_type is not None
    print(f"role {query.role}, purpose {query.purpose}, phase {query.phase}")
    approach = loaded.approach(query.approach).id
    print(f"approach {approach}"
          + (" (default)" if not query.approach else "")
          + (f", person role {query.person_role}" if query.person_role
             else ", case level (no person-specific rule applies)"))
    try:
        explanation = loaded.explain(partner_type, query.role, query.purpose, query.phase,
                                     query.field, approach=query.approach,
                                     person_role=query.person_role)
    except RequestError as exc:
        print(f"ketenpoort policy explain: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if explanation.refusal is not None:
        message = explanation.refusal.message
        if explanation.refusal.code is RefusalCode.PHASE_NOT_ALLOWED:
            phases = loaded.purpose(query.purpose).phases
            message += f"; it applies in phase{'s' if len(phases) > 1 else ''} {', '.join(phases)}"
        _print_refusal(message, explanation.refusal.code)
        return EXIT_FAILED
    for line in _purpose_lines(loaded, partner_type, query.purpose, approach):
        print(line)
    for field in explanation.fields:
        print()
        for line in _field_lines(directory, loaded, field):
            print(line)
    return EXIT_OK


def _unknown_ids(policy: CompiledPolicy, query: ExplainQuery) -> Iterator[str | None]:
    if query.partner is not None:
        yield unknown_id("partner", query.partner, list(policy.partners))
    if query.partner_type is not None:
        types = [t.id for t in policy.policy.partner_types]
        yield unknown_id("partner type", query.partner_type, types)
    yield unknown_id("role", query.role, [r.id for r in policy.policy.roles])
    yield unknown_id("purpose", query.purpose, list(policy.purposes))
    yield unknown_id("phase", query.phase, policy.phases)
    if query.field is not None:
        yield unknown_id("field", query.field, [f.id for f in policy.fields])
    if query.approach:
        yield unknown_id("approach", query.approach, list(policy.approaches))
    if query.person_role:
        yield unknown_id("person role", query.person_role, policy.person_roles)


def _print_refusal(message: str, code: str) -> None:
    print(f"\nREFUSED: {message}")
    print(f"  refusal code: {code}; no field is released")


def _purpose_lines(policy: CompiledPolicy, partner_type: str, purpose_id: str,
                   approach: str) -> Iterator[str]:
    purpose = policy.purpose(purpose_id)
    bases = {basis.id: basis for basis in policy.policy.legal_bases}
    extra = policy.approach(approach).grounds(purpose_id, partner_type)
    yield "legal bases for this recipient:"
    for ground in dict.fromkeys([*purpose.grounds(partner_type), *extra]):
        basis = bases.get(ground)
        text = "" if basis is None else one_line(basis.title) + permits_text(basis.permits)
        yield from wrapped(text, 4, f"  {ground}: ")
    if purpose.requires_participation:
        yield "assumed: the partner takes part in the case"
    else:
        yield "open to partners not taking part in the case (hit/no-hit only)"
    if purpose.break_glass:
        yield (f"break-glass: needs a written justification, lasts at most "
               f"{purpose.max_duration_minutes} minutes, every use is flagged for review")
    elif purpose.requires_justification:
        yield "every request needs a written justification"


def _field_lines(directory: Path, policy: CompiledPolicy,
                 field: FieldExplanation) -> Iterator[str]:
    special = SPECIAL_LABELS.get(str(field.special))
    marker = f"; {special}" if special else ""
    yield f"{field.field}  [{field.category}{marker}]"
    yield f"  outcome:    {effect_text(field.effect, field.transform, field.params)}"
    winner = field.winner
    if field.outside_approach:
        yield "  decided by: the field does not apply under this approach (withheld)"
    elif winner is None:
        yield "  decided by: no rule grants this field (withheld by default)"
    else:
        override = ", an override" if winner.override else ""
        yield f"  decided by: rule {winner.id} ({place(directory, winner.loc)}){override}"
        yield from wrapped(winner.reason, 14)
        if winner.override:
            yield from wrapped("override: " + _override_reason(policy, winner.id), 14)
    for lost in field.losers:
        yield f"  set aside:  {_rule_line(directory, lost.rule)}"
        yield f"              {lost.why}"


def _rule_line(directory: Path, rule: RuleRef) -> str:
    override = ", override" if rule.override else ""
    outcome = effect_text(rule.effect, rule.transform, rule.params)
    return f"rule {rule.id} ({place(directory, rule.loc)}): {outcome}{override}"


def _override_reason(policy: CompiledPolicy, rule_id: str) -> str:
    for rule in policy.policy.rules:
        if rule.id == rule_id:
            return one_line(rule.override_reason)
    return ""
