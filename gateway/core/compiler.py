"""Compile a validated policy into lookup tables, and decide requests against them.

For every (partner type, role, purpose, phase, approach, person role) the policy allows,
every catalogue field is resolved once, at load (``gateway.core.analysis`` says how
conflicts resolve). ``decide`` is then a few dictionary lookups and a selection of the
requested fields; no rule is evaluated per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from operator import itemgetter
from types import MappingProxyType
from typing import cast

from gateway.core.analysis import CASE_LEVEL, CellKey, PolicyAnalysis
from gateway.core.decisions import (
    NO_RULE_REASON,
    AccessRequest,
    Decision,
    FieldDecision,
    Refusal,
    RefusalCode,
    outside_approach_reason,
)
from gateway.core.errors import (
    PolicyError,
    PolicyIssue,
    UnknownApproach,
    UnknownField,
    UnknownPartner,
    UnknownPartnerType,
    UnknownPersonRole,
    UnknownPhase,
    UnknownPurpose,
    UnknownRole,
)
from gateway.core.explain import Cell, Explanation, explain_fields, missing_cell
from gateway.core.model import (
    ZVH_SOURCE,
    ApproachSpec,
    Effect,
    FieldSpec,
    PartnerSpec,
    PolicySet,
    Purpose,
    Rule,
)
from gateway.core.parser import parse_documents
from gateway.core.rulechecks import check_rules, unmentioned_fields
from gateway.core.validate import validate

_Row = tuple[FieldDecision, ...]
_Selector = Callable[[_Row], _Row]
# Partners ask for the same few field lists again and again; remembering how to pick them
# keeps decide() a lookup. The bound keeps odd requests from growing the cache without end.
_SELECTOR_CACHE_SIZE = 1024
# Ground ids in a log record are separated by this.
_GROUND_SEPARATOR = ", "


def _decision(spec: FieldSpec, special: str, rule: Rule | None) -> FieldDecision:
    if rule is None:
        return FieldDecision(spec.id, spec.category, special, spec.source, Effect.WITHHOLD,
                             None, (), None, NO_RULE_REASON)
    reason = rule.reason.strip()
    if rule.override:
        reason = f"{reason} Override: {rule.override_reason.strip()}"
    masked = rule.effect is Effect.MASK
    return FieldDecision(spec.id, spec.category, special, spec.source, rule.effect,
                         rule.transform if masked else None, rule.params if masked else (),
                         rule.id, reason)


class CompiledPolicy:
    """A policy ready to decide requests. Its decisions never change after construction.

    ``warnings`` holds what the checks found worth saying that does not stop the policy.
    """

    def __init__(self, policy: PolicySet, *, analysis: PolicyAnalysis | None = None,
                 warnings: tuple[PolicyIssue, ...] = ()) -> None:
        """Build the tables. ``policy`` must be valid; use ``compile_policy`` to check it.

        ``analysis`` is the policy's cell analysis when the caller already made it.
        """
        self.version = policy.version
        self.policy = policy
        self.warnings = warnings
        self.fields: tuple[FieldSpec, ...] = policy.fields
        # Partner types whose own systems hold fields of the record: the ones a triage
        # question is for. A type without a configured source is then "not asked".
        self.source_types: tuple[str, ...] = tuple(
            sorted({f.source for f in policy.fields} - {ZVH_SOURCE})
        )
        self.phases: tuple[str, ...] = tuple(p.id for p in policy.phases)
        self._partners = {p.id: p for p in policy.partners}
        self._purposes = {p.id: p for p in policy.purposes}
        # Read-only views by id, in policy order.
        self.partners: Mapping[str, PartnerSpec] = MappingProxyType(self._partners)
        self.purposes: Mapping[str, Purpose] = MappingProxyType(self._purposes)
        self._fields = {f.id: f for f in policy.fields}
        self._positions = {f.id: i for i, f in enumerate(policy.fields)}
        self._phase_ids = frozenset(self.phases)
        self._role_ids = frozenset(r.id for r in policy.roles)
        self._partner_types = frozenset(t.id for t in policy.partner_types)
        self._partner_roles = {p.id: frozenset(p.roles) for p in policy.partners}
        self._analysis = analysis if analysis is not None else PolicyAnalysis(policy)
        # The person roles a request may name (besides "" for case level), in policy order.
        self.person_roles: tuple[str, ...] = self._analysis.person_roles
        self._person_roles = frozenset((CASE_LEVEL, *self.person_roles))
        # Approaches by id, resolved: every partner type, purpose and field listed.
        self._approaches = {a.id: a for a in self._analysis.approaches}
        self.approaches: Mapping[str, ApproachSpec] = MappingProxyType(self._approaches)
        self.default_approach: str = self._analysis.default_approach
        self._approach_tables = {a.id: frozenset(a.partner_types or ())
                                 for a in self._analysis.approaches}
        self._approach_purposes = {a.id: frozenset(a.purposes or ())
                                   for a in self._analysis.approaches}
        self._identifiers = {t.id: frozenset(t.identifiers) for t in policy.partner_types}
        specials = {f: str(s) for f, s in policy.specials().items()}
        self._rows = self._build(specials)
        self._legal_basis = self._grounds(policy, self._analysis.approaches)
        self._selectors: dict[tuple[str, ...], _Selector] = {}
        # Refused requests still list the asked fields, all withheld, for the log.
        self._refused = {
            code: tuple(FieldDecision(f.id, f.category, specials[f.id], f.source,
                                      Effect.WITHHOLD, None, (), None,
                                      f"request refused: {code}") for f in policy.fields)
            for code in RefusalCode
        }

    def _build(self, specials: Mapping[str, str]) -> dict[CellKey, _Row]:
        analysis = self._analysis
        rules = self.policy.rules
        # Groups differ in a few fields at most: each decision is made once and shared.
        made: dict[tuple[int, int | None | str], FieldDecision] = {}
        rows: list[_Row] = []
        for group in analysis.groups:
            approach = group.first_cell[4]
            row: list[FieldDecision] = []
            for position, (spec, won) in enumerate(zip(self.fields, group.winners,
                                                       strict=True)):
                memo: tuple[int, int | None | str] = (
                    (position, approach) if position in group.excluded else (position, won))
                decision = made.get(memo)
                if decision is None:
                    if position in group.excluded:
                        decision = FieldDecision(spec.id, spec.category, specials[spec.id],
                                                 spec.source, Effect.WITHHOLD, None, (), None,
                                                 outside_approach_reason(approach))
                    else:
                        decision = _decision(spec, specials[spec.id],
                                             None if won is None else rules[won])
                    made[memo] = decision
                row.append(decision)
            rows.append(tuple(row))
        return {key: rows[index] for key, index in analysis.cells.items()}

    @staticmethod
    def _grounds(policy: PolicySet, approaches: tuple[ApproachSpec, ...]
                 ) -> dict[tuple[str, str, str], str]:
        """The ground ids, as logged, for every (purpose, partner type, approach): the
        purpose's grounds for the type, then the approach's extra grounds for them."""
        types = dict.fromkeys([*(t.id for t in policy.partner_types),
                               *(p.type for p in policy.partners)])
        return {(purpose.id, partner_type, approach.id): _GROUND_SEPARATOR.join(
                    dict.fromkeys([*purpose.grounds(partner_type),
                                   *approach.grounds(purpose.id, partner_type)]))
                for purpose in policy.purposes for partner_type in types
                for approach in approaches}

    def identifiers_for(self, partner_type: str) -> frozenset[str]:
        """What a source of ``partner_type`` may be given to find a person (bsn, name,
        date_of_birth, address, postcode, reference). Raises UnknownPartnerType."""
        try:
            return self._identifiers[partner_type]
        except KeyError:
            raise UnknownPartnerType(partner_type) from None

    def approach(self, approach_id: str) -> ApproachSpec:
        """The resolved approach; "" is the default approach. Raises UnknownApproach."""
        try:
            return self._approaches[approach_id or self.default_approach]
        except KeyError:
            raise UnknownApproach(approach_id) from None

    def _person_role(self, person_role: str) -> str:
        if person_role not in self._person_roles:
            raise UnknownPersonRole(person_role)
        return person_role

    def partner(self, partner_id: str) -> PartnerSpec:
        try:
            return self._partners[partner_id]
        except KeyError:
            raise UnknownPartner(partner_id) from None

    def purpose(self, purpose_id: str) -> Purpose:
        try:
            return self._purposes[purpose_id]
        except KeyError:
            raise UnknownPurpose(purpose_id) from None

    def field(self, field_id: str) -> FieldSpec:
        try:
            return self._fields[field_id]
        except KeyError:
            raise UnknownField(field_id) from None

    def decide(self, request: AccessRequest) -> Decision:
        """Decide a request. Raises a RequestError for ids the policy does not know."""
        partner = self.partner(request.partner_id)
        purpose = self.purpose(request.purpose)
        if request.phase not in self._phase_ids:
            raise UnknownPhase(request.phase)
        if request.role not in self._role_ids:
            raise UnknownRole(request.role)
        approach = request.approach or self.default_approach
        if approach not in self._approach_tables:
            raise UnknownApproach(request.approach)
        person = self._person_role(request.person_role)
        select = self._selector(request.fields)
        refusal = self._refusal(partner, purpose, request, approach)
        if refusal is None:
            row = self._rows[(partner.type, request.role, purpose.id, request.phase,
                              approach, person)]
            chosen = row if select is None else select(row)
            for decision in chosen:
                if decision.effect is not Effect.WITHHOLD:
                    break
            else:
                refusal = Refusal(RefusalCode.NOTHING_PERMITTED,
                                  "the policy releases none of the requested fields for this "
                                  "partner type, role, purpose and phase")
        else:
            row = self._refused[refusal.code]
            chosen = row if select is None else select(row)
        return Decision(request, partner.type, purpose, self.version, refusal, chosen,
                        self._legal_basis[(purpose.id, partner.type, approach)])

    def _selector(self, fields: tuple[str, ...]) -> _Selector | None:
        """How to pick the requested fields (each once, in request order) from a row."""
        if not fields:
            return None
        selector = self._selectors.get(fields)
        if selector is not None:
            return selector
        positions = self._positions
        try:
            wanted = [positions[f] for f in dict.fromkeys(fields)]
        except KeyError as exc:
            raise UnknownField(str(exc.args[0])) from None
        if len(wanted) == 1:
            only = wanted[0]

            def selector(row: _Row) -> _Row:
                return (row[only],)
        else:
            getter = itemgetter(*wanted)

            def selector(row: _Row) -> _Row:
                return cast(_Row, getter(row))
        if len(self._selectors) >= _SELECTOR_CACHE_SIZE:
            self._selectors.clear()
        self._selectors[fields] = selector
        return selector

    def _refusal(self, partner: PartnerSpec, purpose: Purpose, request: AccessRequest,
                 approach: str) -> Refusal | None:
        if request.role not in self._partner_roles[partner.id]:
            return Refusal(RefusalCode.ROLE_NOT_ALLOWED,
                           f"partner {partner.id!r} may not act in role {request.role!r}")
        if partner.type not in self._approach_tables[approach]:
            return Refusal(RefusalCode.NOT_ON_APPROACH_TABLE,
                           f"partners of type {partner.type!r} are not on the standing table "
                           f"of approach {approach!r}")
        if purpose.id not in self._approach_purposes[approach]:
            return Refusal(RefusalCode.PURPOSE_NOT_IN_APPROACH,
                           f"approach {approach!r} does not use purpose {purpose.id!r}")
        if partner.type not in purpose.partner_types:
            return Refusal(RefusalCode.PURPOSE_NOT_ALLOWED,
                           f"partners of type {partner.type!r} may not ask for purpose "
                           f"{purpose.id!r}")
        if request.phase not in purpose.phases:
            return Refusal(RefusalCode.PHASE_NOT_ALLOWED,
                           f"purpose {purpose.id!r} does not apply in phase {request.phase!r}")
        if purpose.requires_participation and not request.participant:
            return Refusal(RefusalCode.NOT_PARTICIPANT,
                           f"purpose {purpose.id!r} is open only to partners taking part "
                           "in the case")
        if purpose.requires_justification and not request.justification.strip():
            return Refusal(RefusalCode.JUSTIFICATION_REQUIRED,
                           f"purpose {purpose.id!r} requires a written justification")
        limit = purpose.max_duration_minutes
        elapsed = request.break_glass_minutes
        if purpose.break_glass and limit is not None and elapsed is not None and elapsed >= limit:
            return Refusal(RefusalCode.BREAK_GLASS_EXPIRED,
                           f"break-glass purpose {purpose.id!r} was first used on this case "
                           f"{elapsed} minutes ago and is open for {limit} minutes; continue "
                           "under a regular purpose")
        return None


    def roles_of(self, partner_type: str) -> tuple[str, ...]:
        """Roles some partner of the type may act in, in the order of the roles section."""
        if partner_type not in self._partner_types:
            raise UnknownPartnerType(partner_type)
        return self._analysis.roles_of.get(partner_type, ())

    def cells(self, *, approach: str | None = "",
              person_role: str | None = CASE_LEVEL) -> Iterator[Cell]:
        """Every cell a request can be made in, with the decision of every field; partner
        types, roles, purposes and phases in policy order.

        ``approach`` "" gives the default approach's cells, None every approach's;
        ``person_role`` "" gives case-level cells, None every person role's (case level too).
        """
        wanted_approach = None if approach is None else (approach or self.default_approach)
        for key, row in self._rows.items():
            if wanted_approach is not None and key[4] != wanted_approach:
                continue
            if person_role is not None and key[5] != person_role:
                continue
            yield Cell(*key[:4], fields=row, approach=key[4], person_role=key[5])

    def outcome(self, partner_type: str, role: str, purpose: str, phase: str,
                field: str, *, approach: str = "",
                person_role: str = CASE_LEVEL) -> FieldDecision | None:
        """The decision for one field in a cell; None when the policy has no such cell
        (unknown ids included). Raises UnknownField for a field not in the catalogue."""
        position = self._positions.get(field)
        if position is None:
            raise UnknownField(field)
        row = self._rows.get((partner_type, role, purpose, phase,
                              approach or self.default_approach, person_role))
        return None if row is None else row[position]

    def explain(self, partner_type: str, role: str, purpose: str, phase: str,
                field: str | None = None, *, approach: str = "",
                person_role: str = CASE_LEVEL) -> Explanation:
        """Why each field (or only ``field``) gets its outcome in the cell.

        Participation and a justification are assumed. Raises a RequestError for ids the
        policy does not know; a cell the policy does not allow is explained by ``refusal``.
        ``approach`` "" is the default approach; ``person_role`` "" a case-level request.
        """
        if partner_type not in self._partner_types:
            raise UnknownPartnerType(partner_type)
        if role not in self._role_ids:
            raise UnknownRole(role)
        self.purpose(purpose)
        if phase not in self._phase_ids:
            raise UnknownPhase(phase)
        approach_id = self.approach(approach).id
        self._person_role(person_role)
        if field is None:
            positions = tuple(range(len(self.fields)))
        elif field in self._positions:
            positions = (self._positions[field],)
        else:
            raise UnknownField(field)
        key = (partner_type, role, purpose, phase, approach_id, person_role)
        row = self._rows.get(key)
        if row is None:
            refusal = missing_cell(self._analysis, *key)
            assert refusal is not None, "a cell missing from the tables has a refusal"
            return Explanation(*key[:4], refusal=refusal, fields=(), approach=approach_id,
                               person_role=person_role)
        return Explanation(*key[:4], refusal=None,
                           fields=explain_fields(self._analysis, key, row, positions),
                           approach=approach_id, person_role=person_role)


def _compiled(policy: PolicySet, issues: list[PolicyIssue]) -> CompiledPolicy:
    """Run the cell-wise checks once the references are sound, then build the tables."""
    if any(issue.is_error for issue in issues):
        raise PolicyError(issues)
    analysis = PolicyAnalysis(policy)
    issues = issues + check_rules(analysis)
    if any(issue.is_error for issue in issues):
        raise PolicyError(issues)
    warnings = tuple(sorted({*issues, *unmentioned_fields(analysis)}))
    return CompiledPolicy(policy, analysis=analysis, warnings=warnings)


def compile_policy(policy: PolicySet) -> CompiledPolicy:
    """Check a parsed policy and compile it. Raises PolicyError with every error found;
    warnings travel with the result (``CompiledPolicy.warnings``)."""
    return _compiled(policy, validate(policy))


def load_policy(documents: Mapping[str, str]) -> CompiledPolicy:
    """Parse, check and compile policy documents (file name -> YAML text).

    Structural and reference problems are reported together in one PolicyError; the checks
    that compare rules cell by cell (shadowed rules, contradictions) run once those pass.
    """
    parsed = parse_documents(documents)
    return _compiled(parsed.policy, parsed.issues + validate(parsed.policy, parsed.declared))
