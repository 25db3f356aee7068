"""The policy decision for a 40-field record: our compiled tables against Cedar and a dict floor.

Four targets decide the same requests, in one run, in this process, taking turns in rounds:

- dict:  the floor, one dict lookup for the cell and one per field;
- ours:  ``CompiledPolicy.decide(AccessRequest(...))`` asking for every field of the record;
- cedar: the same policy translated to Cedar (``cedar_policy.py``), one
  ``cedarpy.is_authorized_batch`` call of one request per field;
- cedar_permit_all: Cedar with one policy that permits everything, the same requests: what
  the binding costs before any of our rules is evaluated.

Before timing, every cell of the policy and a sample of random requests are decided by us
and by Cedar and compared field by field (released or withheld, the transform and its
parameters, the deciding rule). The policy is built in code (``synthetic_policy.py``: 40
fields, 61 rules) unless ``--policy DIR`` names another. A table goes to stdout, or JSON::

    python bench/policy_decision_bench.py [--json] [--rounds 3] [--policy DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import json
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadgen import percentile
from synthetic_policy import documents

from gateway.core import (
    AccessRequest,
    CompiledPolicy,
    Effect,
    FieldDecision,
    PolicyError,
    load_policy,
)
from gateway.policyfiles import PolicyDirectoryError, load_policy_dir

if TYPE_CHECKING:
    from cedar_policy import CedarPolicy

TARGETS = ("dict", "ours", "cedar", "cedar_permit_all")
CEDAR_TARGETS = ("cedar", "cedar_permit_all")
DEFAULT_ITERATIONS = 20_000
DEFAULT_CEDAR_ITERATIONS = 500
DEFAULT_WARMUP = 2_000
DEFAULT_ROUNDS = 3
DEFAULT_AGREEMENT_SAMPLE = 400
# The aims of the compiled design: a 40-field record well inside a request's budget, and far
# cheaper than a general policy engine asked once per field.
AIM_OURS_US = 20.0
AIM_CEDAR_RATIO = 50.0
TINY = {"iterations": 300, "cedar_iterations": 20, "warmup": 50, "rounds": 1,
        "agreement_sample": 60}
JUSTIFICATION = "Acute threat reported by the police; the children are at home."
MAX_MISMATCH_EXAMPLES = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    p.add_argument("--json", action="store_true", help="print one JSON document, no table")
    p.add_argument("--policy", type=Path, default=None, metavar="DIR",
                   help="decide with the policy in DIR instead of the synthetic 40-field one")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help=f"comma-separated subset of {','.join(TARGETS)}")
    p.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                   help="timed records per round for ours and dict")
    p.add_argument("--cedar-iterations", type=int, default=DEFAULT_CEDAR_ITERATIONS,
                   help="timed records per round for the Cedar targets")
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                   help="untimed records before every measured run")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    p.add_argument("--agreement-sample", type=int, default=DEFAULT_AGREEMENT_SAMPLE,
                   help="random requests (refused ones too) checked against Cedar besides "
                   "every cell of the policy")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--tiny", action="store_true",
                   help="a few hundred records and one round: proves the bench works, "
                   "measures nothing")
    p.add_argument("--profile", action="store_true",
                   help="also profile our decide loop (cProfile) and print the top functions "
                   "on stderr")
    p.add_argument("--cedar-text", type=Path, default=None, metavar="PATH",
                   help="write the translated Cedar policies to PATH")
    args = p.parse_args(argv)
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
    wanted = set(args.targets.split(","))
    if wanted - set(TARGETS):
        p.error(f"unknown targets: {', '.join(sorted(wanted - set(TARGETS)))}")
    args.targets = tuple(t for t in TARGETS if t in wanted)
    if not args.targets or min(args.iterations, args.cedar_iterations, args.rounds) < 1:
        p.error("need at least one target, iterations >= 1 and rounds >= 1")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the requests ---------------------------------------------------------------------------

def cell_requests(policy: CompiledPolicy, fields: tuple[str, ...]) -> list[AccessRequest]:
    """Every (partner, role, purpose, phase) the policy opens, asking for ``fields``."""
    return [
        AccessRequest(partner.id, role, purpose.id, phase, participant=True, fields=fields,
                      justification=JUSTIFICATION)
        for purpose in policy.policy.purposes
        for partner in policy.policy.partners if partner.type in purpose.partner_types
        for role in partner.roles
        for phase in purpose.phases
    ]


def random_requests(policy: CompiledPolicy, fields: tuple[str, ...], count: int,
                    rng: random.Random) -> list[AccessRequest]:
    """Any known ids in any combination, so that refused requests are checked too."""
    partners = [p.id for p in policy.policy.partners]
    roles = [r.id for r in policy.policy.roles]
    purposes = list(policy.purposes)
    return [
        AccessRequest(rng.choice(partners), rng.choice(roles), rng.choice(purposes),
                      rng.choice(policy.phases), participant=rng.random() < 0.8,
                      fields=fields, justification=rng.choice((JUSTIFICATION, "", "  ")))
        for _ in range(count)
    ]


# --- timing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """One measured run (µs): per-record median and p99, and the mean of a tight loop in
    wall-clock and in CPU time. On a shared machine the CPU mean leaves out the time the
    process waited for a core."""

    median_us: float
    p99_us: float
    mean_us: float
    cpu_mean_us: float


def per_call_ns(call: Callable[[Any], object], inputs: Sequence[Any],
                iterations: int) -> list[int]:
    clock = time.perf_counter_ns
    count = len(inputs)
    samples = [0] * iterations
    for i in range(iterations):
        item = inputs[i % count]
        start = clock()
        call(item)
        samples[i] = clock() - start
    return samples


def loop_mean_ns(call: Callable[[Any], object], inputs: Sequence[Any],
                 iterations: int) -> tuple[float, float]:
    """Mean wall-clock and CPU nanoseconds per call, over a loop without clock reads."""
    cycle = [inputs[i % len(inputs)] for i in range(iterations)]
    cpu_start = time.process_time_ns()
    start = time.perf_counter_ns()
    for item in cycle:
        call(item)
    wall = time.perf_counter_ns() - start
    cpu = time.process_time_ns() - cpu_start
    return wall / iterations, cpu / iterations


def measure(call: Callable[[Any], object], inputs: Sequence[Any], iterations: int,
            warmup: int) -> Timing:
    loop_mean_ns(call, inputs, max(warmup, 1))
    samples = sorted(per_call_ns(call, inputs, iterations))
    mean, cpu_mean = loop_mean_ns(call, inputs, iterations)
    return Timing(percentile(samples, 50) / 1000, percentile(samples, 99) / 1000, mean / 1000,
                  cpu_mean / 1000)


def timer_overhead_ns(iterations: int = 10_000) -> float:
    """What one perf_counter_ns pair costs; it is inside every per-call sample."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(iterations):
        start = clock()
        samples.append(clock() - start)
    return statistics.median(samples)


# --- the targets ----------------------------------------------------------------------------

_CellKey = tuple[str, str, str, str]


def dict_floor(policy: CompiledPolicy,
               requests: Sequence[AccessRequest]) -> Callable[[AccessRequest], object]:
    """The floor: the answers already in a dict per cell, looked up once per field."""
    types = {p.id: p.type for p in policy.policy.partners}
    cells: dict[_CellKey, dict[str, FieldDecision]] = {}
    for request in requests:
        decision = policy.decide(request)
        cells[(decision.partner_type, request.role, request.purpose, request.phase)] = {
            d.field: d for d in decision.fields}

    def lookup(request: AccessRequest) -> object:
        row = cells[(types[request.partner_id], request.role, request.purpose, request.phase)]
        return [row[f] for f in request.fields]

    return lookup


def require_cedarpy() -> None:
    if importlib.util.find_spec("cedarpy") is None:
        raise SystemExit("cedarpy is not installed: pip install -e '.[bench]', or leave the "
                         "Cedar targets out with --targets dict,ours")


def run_rounds(args: argparse.Namespace, calls: dict[str, Callable[[Any], object]],
               inputs: dict[str, Sequence[Any]]) -> dict[str, list[Timing]]:
    """The targets take turns, so that a noisy spell on the shared machine hits them all."""
    runs: dict[str, list[Timing]] = {t: [] for t in calls}
    for round_no in range(1, args.rounds + 1):
        for target, call in calls.items():
            iterations = args.cedar_iterations if target in CEDAR_TARGETS else args.iterations
            warmup = min(args.warmup, iterations)
            timing = measure(call, inputs[target], iterations, warmup)
            runs[target].append(timing)
            say(f"round {round_no}/{args.rounds} {target:16s} median {timing.median_us:9.2f} µs"
                f"  p99 {timing.p99_us:9.2f} µs  mean {timing.mean_us:9.2f} µs"
                f"  CPU {timing.cpu_mean_us:9.2f} µs")
    return runs


def profile_decide(policy: CompiledPolicy, requests: Sequence[AccessRequest],
                   iterations: int) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(loop_mean_ns, policy.decide, requests, iterations)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


# --- agreement with Cedar -------------------------------------------------------------------

def _ours(decision: FieldDecision) -> dict[str, Any]:
    released = decision.effect is not Effect.WITHHOLD
    return {"released": released, "transform": decision.transform,
            "params": dict(decision.params), "rule": decision.rule_id if released else None}


def check_agreement(policy: CompiledPolicy, cedar: CedarPolicy,
                    requests: Sequence[AccessRequest]) -> dict[str, Any]:
    """Compare, field by field, our decision with Cedar's for every request."""
    counts = {"requests": len(requests), "refused": 0, "fields": 0, "disclosed": 0,
              "masked": 0, "withheld": 0, "mismatches": 0}
    examples: list[dict[str, Any]] = []
    for request in requests:
        decision = policy.decide(request)
        counts["refused"] += not decision.permitted
        outcomes = cedar.decide(request, request.fields)
        for ours, theirs in zip(decision.fields, outcomes, strict=True):
            counts["fields"] += 1
            counts[{"disclose": "disclosed", "mask": "masked",
                    "withhold": "withheld"}[str(ours.effect)]] += 1
            want = _ours(ours)
            got = {"released": theirs.released, "transform": theirs.transform,
                   "params": dict(theirs.params), "rule": theirs.rule_id}
            if want == got and not theirs.errors:
                continue
            counts["mismatches"] += 1
            if len(examples) < MAX_MISMATCH_EXAMPLES:
                examples.append({
                    "request": [request.partner_id, request.role, request.purpose,
                                request.phase, request.participant],
                    "field": ours.field, "ours": want, "cedar": got,
                    "cedar_errors": list(theirs.errors)})
    return {**counts, "examples": examples}


# --- the report -----------------------------------------------------------------------------

def _summary(runs: list[Timing], iterations: int) -> dict[str, Any]:
    return {
        "median_us": round(statistics.median(t.median_us for t in runs), 3),
        "p99_us": round(statistics.median(t.p99_us for t in runs), 3),
        "mean_us": round(statistics.median(t.mean_us for t in runs), 3),
        "cpu_mean_us": round(statistics.median(t.cpu_mean_us for t in runs), 3),
        "median_us_per_round": [round(t.median_us, 3) for t in runs],
        "p99_us_per_round": [round(t.p99_us, 3) for t in runs],
        "iterations": iterations,
    }


def _ratios(targets: dict[str, dict[str, Any]], top: str, base: str) -> dict[str, float]:
    return {key: round(targets[top][f"{key}_us"] / targets[base][f"{key}_us"], 1)
            for key in ("median", "p99", "mean", "cpu_mean")}


def effect_mix(policy: CompiledPolicy, requests: Sequence[AccessRequest]) -> dict[str, float]:
    """Per record, how many fields each effect decides, over the timed requests."""
    totals = {"disclose": 0, "mask": 0, "withhold": 0}
    for request in requests:
        for decision in policy.decide(request).fields:
            totals[str(decision.effect)] += 1
    return {k: round(v / len(requests), 1) for k, v in totals.items()}


def policy_shape(policy: CompiledPolicy, source: str, cells: int) -> dict[str, Any]:
    model = policy.policy
    return {"source": source, "version": policy.version, "fields": len(model.fields),
            "rules": len(model.rules), "partner_types": len(model.partner_types),
            "partners": len(model.partners), "roles": len(model.roles),
            "purposes": len(model.purposes), "phases": len(model.phases),
            "categories": len(model.categories), "cells": cells,
            "overrides": sum(r.override for r in model.rules),
            "masks": sum(r.effect is Effect.MASK for r in model.rules),
            "withholds": sum(r.effect is Effect.WITHHOLD for r in model.rules)}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def build_report(args: argparse.Namespace, shape: dict[str, Any], runs: dict[str, list[Timing]],
                 agreement: dict[str, Any] | None, mix: dict[str, float], overhead: float,
                 cedar: dict[str, Any] | None) -> dict[str, Any]:
    targets = {t: _summary(r, args.cedar_iterations if t in CEDAR_TARGETS else args.iterations)
               for t, r in runs.items()}
    report: dict[str, Any] = {
        "benchmark": "policy_decision",
        "policy": shape,
        "record_fields": shape["fields"],
        "targets": targets,
    }
    ratios = {}
    if {"cedar", "ours"} <= set(targets):
        ratios["cedar_vs_ours"] = _ratios(targets, "cedar", "ours")
    if {"ours", "dict"} <= set(targets):
        ratios["ours_vs_dict"] = _ratios(targets, "ours", "dict")
    report["ratios"] = ratios
    aims: dict[str, Any] = {}
    if "ours" in targets:
        aims["ours_median_under_20us"] = targets["ours"]["median_us"] < AIM_OURS_US
    if "cedar_vs_ours" in ratios:
        aims["cedar_at_least_50x_ours"] = ratios["cedar_vs_ours"]["median"] >= AIM_CEDAR_RATIO
    report["aims"] = aims
    report["fields_per_record_by_effect"] = mix
    if agreement is not None:
        report["agreement"] = agreement
    if cedar is not None:
        report["cedar"] = cedar
    report.update({
        "rounds": args.rounds, "warmup": args.warmup, "timer_overhead_ns": overhead,
        "tiny": args.tiny,
        "environment": {"python": platform.python_version(), "cedarpy": _version("cedarpy"),
                        "pyyaml": _version("pyyaml"), "cpu_count": os.cpu_count(),
                        "platform": platform.platform()},
    })
    return report


def table(report: dict[str, Any]) -> str:
    shape = report["policy"]
    source = ("synthetic policy" if shape["source"] == "synthetic"
              else f"policy {shape['source']}")
    lines = [
        f"Policy decision for a {report['record_fields']}-field record "
        f"({source}: {shape['rules']} rules, {shape['cells']} cells), "
        f"median of {report['rounds']} rounds",
        "",
        f"{'target':18s}{'median µs':>12s}{'p99 µs':>12s}{'mean µs':>12s}"
        f"{'CPU µs':>12s}{'× ours':>10s}",
    ]
    targets = report["targets"]
    for name, t in targets.items():
        vs = (f"{t['median_us'] / targets['ours']['median_us']:.1f}"
              if "ours" in targets else "-")
        lines.append(f"{name:18s}{t['median_us']:12.2f}{t['p99_us']:12.2f}"
                     f"{t['mean_us']:12.2f}{t['cpu_mean_us']:12.2f}{vs:>10s}")
    mix = report["fields_per_record_by_effect"]
    lines += ["", f"fields per record: {mix['disclose']} disclosed, {mix['mask']} masked, "
              f"{mix['withhold']} withheld (mean over the timed requests)"]
    agreement = report.get("agreement")
    if agreement is not None:
        lines.append(
            f"agreement with Cedar: {agreement['requests']} requests "
            f"({agreement['refused']} refused), {agreement['fields']} fields, "
            f"{agreement['mismatches']} mismatches")
    aims = report["aims"]
    if "ours_median_under_20us" in aims:
        lines.append(f"aim ours < {AIM_OURS_US:g} µs: "
                     f"{'met' if aims['ours_median_under_20us'] else 'MISSED'}")
    if "cedar_at_least_50x_ours" in aims:
        ratio = report["ratios"]["cedar_vs_ours"]["median"]
        lines.append(f"aim Cedar >= {AIM_CEDAR_RATIO:g}× ours: {ratio:g}× "
                     f"{'met' if aims['cedar_at_least_50x_ours'] else 'MISSED'}")
    cedar = report.get("cedar", {})
    for key, label in (("engine_per_request", "Cedar"),
                       ("permit_all_engine_per_request", "Cedar permit-all")):
        if key in cedar:
            lines.append(f"{label}'s own account per request: "
                         f"{cedar[key]['build_request_us']:g} µs building the request, "
                         f"{cedar[key]['authorize_us']:g} µs authorizing")
    lines.append(f"timer overhead {report['timer_overhead_ns']:.0f} ns per sample "
                 "(inside median and p99, not inside mean)")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------

def load(args: argparse.Namespace) -> tuple[CompiledPolicy, str]:
    if args.policy is None:
        return load_policy(documents()), "synthetic"
    try:
        return load_policy_dir(args.policy), str(args.policy)
    except (PolicyError, PolicyDirectoryError) as exc:
        raise SystemExit(f"{args.policy}: the policy does not load:\n{exc}") from None


@dataclass
class Plan:
    """What each target calls, with which inputs, and what the Cedar side found."""

    calls: dict[str, Callable[[Any], object]] = field(default_factory=dict)
    inputs: dict[str, Sequence[Any]] = field(default_factory=dict)
    agreement: dict[str, Any] | None = None
    cedar: dict[str, Any] | None = None


def add_cedar(plan: Plan, args: argparse.Namespace, policy: CompiledPolicy,
              checked: Sequence[AccessRequest], timed: Sequence[AccessRequest]) -> None:
    """Translate the policy, check Cedar against our decisions, and add the Cedar targets."""
    require_cedarpy()
    from cedar_policy import engine_metrics, permit_all, translate

    cedar = translate(policy.policy)
    if args.cedar_text is not None:
        args.cedar_text.write_text(cedar.text, encoding="utf-8")
    # Cedar gets every advantage: parsed handles, and its requests built beforehand.
    batches = [cedar.requests(r, r.fields) for r in timed]
    plan.cedar = {"policies": len(cedar.policies)}
    if "cedar" in args.targets:
        say(f"checking {len(checked)} requests against Cedar")
        plan.agreement = check_agreement(policy, cedar, checked)
        plan.calls["cedar"], plan.inputs["cedar"] = cedar.authorize, batches
        plan.cedar["engine_per_request"] = engine_metrics(cedar, batches[:10])
    if "cedar_permit_all" in args.targets:
        floor = permit_all(cedar)
        plan.calls["cedar_permit_all"], plan.inputs["cedar_permit_all"] = floor.authorize, batches
        plan.cedar["permit_all_engine_per_request"] = engine_metrics(floor, batches[:10])


def run(args: argparse.Namespace) -> dict[str, Any]:
    policy, source = load(args)
    fields = tuple(f.id for f in policy.fields)
    cells = cell_requests(policy, fields)
    rng = random.Random(args.seed)
    # Each timed record is another cell, in a fixed shuffled order.
    timed = rng.sample(cells, len(cells))
    plan = Plan()
    if "dict" in args.targets:
        plan.calls["dict"], plan.inputs["dict"] = dict_floor(policy, timed), timed
    if "ours" in args.targets:
        plan.calls["ours"], plan.inputs["ours"] = policy.decide, timed
    if set(CEDAR_TARGETS) & set(args.targets):
        checked = cells + random_requests(policy, fields, args.agreement_sample, rng)
        add_cedar(plan, args, policy, checked, timed)
    say(f"policy {source}: {len(fields)} fields, {len(policy.policy.rules)} rules, "
        f"{len(cells)} cells")
    overhead = timer_overhead_ns()
    runs = run_rounds(args, plan.calls, plan.inputs)
    if args.profile:
        say(profile_decide(policy, timed, args.iterations))
    return build_report(args, policy_shape(policy, source, len(cells)), runs, plan.agreement,
                        effect_mix(policy, timed), overhead, plan.cedar)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(json.dumps(report, indent=2) if args.json else table(report))
    agreement = report.get("agreement")
    if agreement and agreement["mismatches"]:
        say(f"Cedar disagrees with our decision on {agreement['mismatches']} fields; "
            "first cases:\n" + json.dumps(agreement["examples"], indent=2))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
