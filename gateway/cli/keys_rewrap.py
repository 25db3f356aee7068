"""`ketenpoort keys rewrap`: re-wrap the cases' data keys under the current key-encryption key.

After ``rotate`` new cases get their data key wrapped under the new key-encryption key (KEK);
this moves the existing ones, batch by batch (see ``gateway.store.rewrap``), printing a line
per batch and the number of live data keys per KEK before and after. Gateways do the same in
the background (``rewrap_interval_s``); running both at once is safe. With ``--status`` it
only counts. Exit 0 when no live data key is left under another KEK than the current one
(then the old KEK can be retired), 1 when some are (or the run failed: run it again, it goes
on where it stopped), 2 on wrong arguments or unreadable keys.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gateway.cli.gateway_state import add_state_args, config_of, opened_database

if TYPE_CHECKING:
    from gateway.crypto.live_keystore import LiveKeystore
    from gateway.server.config import GatewayConfig
    from gateway.store.rewrap import RewrapStatus


def add_parser(keys: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rewrap = keys.add_parser(
        "rewrap",
        help="re-wrap the cases' data keys under the current key-encryption key",
        description="Moves the data key of every live case still wrapped under an older "
        "key-encryption key to the current one, batch by batch, printing a line per batch "
        "and the data keys per key before and after. Gateways do the same in the background "
        "(rewrap_interval_s); running both at once is safe. Exit 0 when no live data key is "
        "left under an older key, 1 when some are (or the run failed: run it again, it goes "
        "on where it stopped), 2 on wrong arguments or unreadable keys.",
    )
    add_state_args(rewrap, config_help="gateway configuration (database, keys, batch size)")
    rewrap.add_argument(
        "--status", action="store_true", help="only count the data keys per key; change nothing"
    )
    rewrap.add_argument(
        "--batch", type=_positive, metavar="N", help="cases per transaction (default: the "
        "configuration's rewrap_batch_size)"
    )
    rewrap.set_defaults(run=run_rewrap)


def run_rewrap(args: argparse.Namespace) -> int:
    from gateway.crypto.errors import CryptoError
    from gateway.crypto.keystore import Keystore
    from gateway.crypto.live_keystore import LiveKeystore

    config = config_of(args)
    try:
        keystore = Keystore.open(config.keys_dir, config.key_provider)
    except (CryptoError, OSError) as exc:
        print(f"ketenpoort keys rewrap: {exc}", file=sys.stderr)
        return 2
    try:
        # A rotation made while this runs is seen within a few seconds: the run then moves
        # on to the newest key.
        return _run(args, config, LiveKeystore(keystore))
    finally:
        keystore.close()


def _run(args: argparse.Namespace, config: GatewayConfig, keys: LiveKeystore) -> int:
    from gateway.crypto.errors import CryptoError
    from gateway.store.errors import StoreError
    from gateway.store.rewrap import BatchOutcome, Rewrapper, rewrap_status

    batch_size = args.batch or config.rewrap_batch_size
    try:
        with opened_database(config) as engine:
            before = rewrap_status(engine, keys)
            _show(before)
            if args.status or before.pending == 0:
                return _verdict(before)
            print(
                f"re-wrapping {before.pending} data keys under {before.current_kek_id} "
                f"in batches of {batch_size}",
                flush=True,
            )
            done = 0

            def progress(batch: BatchOutcome) -> None:
                nonlocal done
                done += batch.rewrapped + batch.passed_over + len(batch.failures)
                line = f"{done}/{before.pending} done: {batch.rewrapped} re-wrapped"
                if batch.passed_over:
                    line += f", {batch.passed_over} changed meanwhile (shredded, or done elsewhere)"
                if batch.failures:
                    line += f", {len(batch.failures)} left as they were"
                print(line, flush=True)
                for failure in batch.failures:
                    named = failure.kek_id or "no readable key id"
                    print(
                        f"case {failure.case_id}: data key under {named} left as it was "
                        f"({failure.reason.value})",
                        file=sys.stderr,
                    )

            report = Rewrapper(engine, keys, batch_size=batch_size).run(on_batch=progress)
            # A rotation during the run shows in the count below, against the newest key.
            keys.refresh()
            after = rewrap_status(engine, keys)
    except (StoreError, CryptoError) as exc:
        print(f"ketenpoort keys rewrap failed: {exc}; run it again", file=sys.stderr)
        return 1
    print(
        f"{report.rewrapped} data keys re-wrapped under {report.target_kek_id}, "
        f"{report.passed_over} changed meanwhile, {report.failed} left as they were"
    )
    _show(after)
    return _verdict(after)


def _show(status: RewrapStatus) -> None:
    print(f"current key-encryption key: {status.current_kek_id}")
    counts = {status.current_kek_id: 0, **status.by_kek}
    for kek_id, count in sorted(counts.items()):
        note = ""
        if kek_id == status.current_kek_id:
            note = "  (current)"
        elif kek_id in status.unknown_kek_ids:
            note = "  (not loaded: these cases cannot be read)"
        print(f"  {kek_id}  {count} data keys{note}")
    if status.unreadable:
        print(f"  {status.unreadable} data keys whose stored form names no key (damaged)")
    print(
        f"{status.pending} of {status.total} live data keys not under the current key",
        flush=True,
    )


def _verdict(status: RewrapStatus) -> int:
    if status.pending == 0:
        print(
            "no live data key is left under an older key: those keys can be retired once "
            "every gateway uses the current one"
        )
        return 0
    return 1


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
