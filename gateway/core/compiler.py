"""Compile a validated policy into lookup tables, and decide requests against them.

For every (partner type, role, purpose, phase) the policy allows, every catalogue field is
resolved once, at load (``gateway.core.analysis`` says how conflicts resolve). ``decide`` is
then a few dictionary lookups and a selection of the requested fields; no rule is evaluated
per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from operator import itemgetter
from types import MappingProxyType
from typing import cast

from gateway.core.analysis import CellKey, PolicyAnalysis
from gateway.core.decisions import (
    NO_RULE_REASON,
    AccessRequest,
    Decision,
    FieldDecision,
    Refusal,
    RefusalCode,
)
from gateway.core.errors import (
    PolicyError,
    PolicyIssue,
    UnknownField,
    UnknownPartner,
    UnknownPartnerType,
    UnknownPhase,
    UnknownPurpose,
    UnknownRole,
)
from gateway.core.explain import Cell, Explanation, explain_fields, missing_cell
from gateway.core.model import (
    ZVH_SOURCE,
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
        specials = {f: str(s) for f, s in policy.specials().items()}
        self._rows = self._build(specials)
        self._legal_basis = self._grounds(policy)
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
        rows = [tuple(_decision(spec, specials[spec.id],
                                None if won is None else rules[won])
                      for spec, won in zip(self.fields, group.winners, strict=True))
                for group in analysis.groups]
        return {key: rows[index] for key, index in analysis.cells.items()}

    @staticmethod
    def _grounds(policy: PolicySet) -> dict[tuple[str, str], str]:
        """The ground ids, as logged, for every (purpose, partner type)."""
        types = dict.fromkeys([*(t.id for t in policy.partner_types),
                               *(p.type for p in policy.partners)])
        return {(purpose.id, partner_type): _GROUND_SEPARATOR.join(
                    purpose.grounds(partner_type))
                for purpose in policy.purposes for partner_type in types}

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
        select = self._selector(request.fields)
        refusal = self._refusal(partner, purpose, request)
        if refusal is None:
            row = self._rows[(partner.type, request.role, purpose.id, request.phase)]
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
                        self._legal_basis[(purpose.id, partner.type)])

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

    def _refusal(self, partner: PartnerSpec, purpose: Purpose,
                 request: AccessRequest) -> Refusal | None:
        if request.role not in self._partner_roles[partner.id]:
            return Refusal(RefusalCode.ROLE_NOT_ALLOWED,
                           f"partner {partner.id!r} may not act in role {request.role!r}")
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

    def cells(self) -> Iterator[Cell]:
        """Every (partner type, role, purpose, phase) a request can be made in, with the
        decision of every field; partner types, roles, purposes and phases in policy order."""
        for key, row in self._rows.items():
            yield Cell(*key, fields=row)

    def outcome(self, partner_type: str, role: str, purpose: str, phase: str,
                field: str) -> FieldDecision | None:
        """The decision for one field in a cell; None when the policy has no such cell
        (unknown ids included). Raises UnknownField for a field not in the catalogue."""
        position = self._positions.get(field)
        if position is None:
            raise UnknownField(field)
        row = self._rows.get((partner_type, role, purpose, phase))
        return None if row is None else row[position]

    def explain(self, partner_type: str, role: str, purpose: str, phase: str,
                field: str | None = None) -> Explanation:
        """Why each field (or only ``field``) gets its outcome in the cell.

        Participation and a justification are assumed. Raises a RequestError for ids the
        policy does not know; a cell the policy does not allow is explained by ``refusal``.
        """
        if partner_type not in self._partner_types:
            raise UnknownPartnerType(partner_type)
        if role not in self._role_ids:
            raise UnknownRole(role)
        self.purpose(purpose)
        if phase not in self._phase_ids:
            raise UnknownPhase(phase)
        if field is None:
            positions = tuple(range(len(self.fields)))
        elif field in self._positions:
            positions = (self._positions[field],)
        else:
            raise UnknownField(field)
        key = (partner_type, role, purpose, phase)
        row = self._rows.get(key)
        if row is None:
            refusal = missing_cell(self._analysis, *key)
            assert refusal is not None, "a cell missing from the tables has a refusal"
            return Explanation(*key, refusal=refusal, fields=())
        return Explanation(*key, refusal=None,
                           fields=explain_fields(self._analysis, key, row, positions))


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
