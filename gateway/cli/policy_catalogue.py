"""`ketenpoort policy catalogue`: the field catalogue a partner's source runtime checks against.

Writes the policy's fields (id, category, kind, source partner type, about, description) and
partner types (with the identifiers a source of that type may be given) as JSON in the
format "ketenpoort-catalogue/1". The gateway's operator hands the file to partners; their
``ketenpoort source check`` validates a mapping file against it without any gateway code
(adapters.source_runtime.catalogue reads it). Nothing in it is secret: it is the covenant's
catalogue, not anyone's data.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from gateway.cli.policy_output import EXIT_OK, EXIT_USAGE, load_or_report
from gateway.core import CompiledPolicy

CATALOGUE_FORMAT = "ketenpoort-catalogue/1"


def catalogue_document(policy: CompiledPolicy) -> dict[str, Any]:
    spec = policy.policy
    return {
        "format": CATALOGUE_FORMAT,
        "fields": [
            {
                "id": f.id,
                "category": f.category,
                "kind": str(f.kind),
                "source": f.source,
                "about": str(f.about),
                "description": f.description,
            }
            for f in spec.fields
        ],
        "partner_types": [
            {"id": t.id, "identifiers": list(t.identifiers)} for t in spec.partner_types
        ],
    }


def run_catalogue(directory: Path, output: Path | None) -> int:
    policy = load_or_report(directory, "catalogue")
    if isinstance(policy, int):
        return policy
    text = json.dumps(catalogue_document(policy), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        # Written beside and renamed, so a partner never picks up half a catalogue.
        partial = output.with_name(output.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, output)
    except OSError as exc:
        print(f"ketenpoort policy catalogue: cannot write {output}: {exc.strerror}",
              file=sys.stderr)
        return EXIT_USAGE
    print(f"catalogue of {len(policy.policy.fields)} fields written to {output}")
    return EXIT_OK
