"""The demo's triage check: hit/no-hit per chosen partner type and person, nobody else asked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from gateway.cli.demo_checks import Demo
from gateway.cli.demo_views import CaseView, source_identity, source_record
from gateway.core import Effect

TRIAGE_FIELD = "triage.role"


async def triage(demo: Demo, case: CaseView, chosen: Sequence[str]) -> None:
    """The process director asks the partner types ``chosen`` about every person of the case.

    Each hit must say what the partner's own system knows of the person (its role there when
    the policy lets the triage role through for every person asked about); a partner type not
    chosen is asked nothing at all."""
    running = {t: demo.source_of_type(t) for t in demo.backends}
    up_sources = {t: s for t, s in running.items() if s is not None}
    lookups_before = {t: s.servicer.lookups for t, s in up_sources.items()}
    answer = await demo.clients["zvh"].triage(case.case_id, partner_types=list(chosen))
    case.triages += 1
    request = replace(
        demo.request_of(case, "zvh", "triage", "triage"), fields=(TRIAGE_FIELD,)
    )
    decided = {
        p.person_id: demo.policy.decide(replace(request, person_role=p.role)).fields[0]
        for p in case.persons.values()
    }
    asked = [p for p in case.persons.values() if decided[p.person_id].effect is not Effect.WITHHOLD]
    roles_shown = all(decided[p.person_id].effect is Effect.DISCLOSE for p in asked)
    hits = {(h.partner_type, h.person_id): h for h in answer.hits}
    known_anywhere = False
    # A hit nobody could answer (a system down, or nothing it may be given about the person)
    # makes the triage incomplete.
    incomplete = False
    for person in asked:
        said: list[str] = []
        ok = True
        for t in sorted(set(chosen)):
            identity = source_identity(demo.policy, person, t)
            up = running.get(t) is not None and identity is not None
            record = source_record(demo.backends.get(t), identity) if up else None
            known_anywhere |= record is not None
            incomplete |= not up
            if not roles_shown:
                continue
            hit = hits.get((t, person.person_id))
            want = (up, record is not None, record.role if record is not None else "")
            ok &= hit is not None and (hit.answered, hit.known, hit.role) == want
            said.append(
                f"{t} " + (
                    ("knows as " + repr(record.role)) if record is not None
                    else "does not know" if up
                    else "down" if t == demo.down_type
                    else "not asked (nothing it may be given)"
                )
            )
        demo.checks.check(
            ok,
            f"triage about {person.label} ({person.role}): "
            + ("; ".join(said) if roles_shown else "roles masked, hit/no-hit only"),
        )
    demo.checks.check(
        answer.known_anywhere == known_anywhere
        and (roles_shown or not answer.hits)
        and answer.incomplete == incomplete,
        f"triage answer: known somewhere {answer.known_anywhere}, incomplete "
        f"{answer.incomplete}",
    )
    unchosen = sorted(t for t in lookups_before if t not in chosen)
    quiet = all(up_sources[t].servicer.lookups == lookups_before[t] for t in unchosen)
    demo.checks.check(
        quiet and not any(t in unchosen for t, _ in hits),
        f"triage: partner types not chosen were not asked at all ({', '.join(unchosen)})",
    )
