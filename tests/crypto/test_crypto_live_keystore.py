"""LiveKeystore: when a serving gateway looks again at its key-encryption keys."""

from __future__ import annotations

import pytest

from gateway.crypto import DevKeyPaths, Keystore, KeystoreError, rotate_kek
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.live_keystore import LiveKeystore

UNKNOWN = "kek_0000000000000000"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Looks:
    """The keystore's own refresh, remembering what each look reported."""

    def __init__(self, keystore: Keystore) -> None:
        self.keystore = keystore
        self.seen: list[bool] = []

    def __call__(self) -> bool:
        changed = self.keystore.refresh()
        self.seen.append(changed)
        return changed


def live(root: DevKeyPaths, clock: Clock) -> tuple[LiveKeystore, Looks]:
    looks = Looks(Keystore.open(root.root))
    keys = LiveKeystore(
        looks.keystore, refresh=looks, recheck_s=5.0, miss_interval_s=1.0, monotonic=clock
    )
    return keys, looks


def test_a_rotation_is_seen_once_the_recheck_interval_passed(fresh_keys: DevKeyPaths) -> None:
    clock = Clock()
    keys, looks = live(fresh_keys, clock)
    old = keys.current_kek.kek_id
    new = rotate_kek(fresh_keys.root)
    clock.now += 4.9
    assert keys.current_kek.kek_id == old
    assert looks.seen == []
    clock.now += 0.1
    assert keys.current_kek.kek_id == new
    assert set(keys.kek_ids) == {old, new}
    assert keys.kek(old).kek_id == old  # the old key still opens what it wrapped
    clock.now += 5
    assert keys.current_kek.kek_id == new
    # The look handed in ran each time and saw the change once.
    assert looks.seen == [True, False]


def test_a_key_not_loaded_is_looked_for_at_once_but_not_on_every_miss(
    fresh_keys: DevKeyPaths,
) -> None:
    clock = Clock()
    keys, looks = live(fresh_keys, clock)
    # Another replica rotated and re-wrapped a case under the new key: found without waiting.
    new = rotate_kek(fresh_keys.root)
    assert keys.kek(new).kek_id == new
    assert looks.seen == [True]
    # Within miss_interval_s of a look for a missing key, a miss does not look again.
    for _ in range(3):
        with pytest.raises(KeystoreError):
            keys.kek(UNKNOWN)
    assert looks.seen == [True]
    newer = rotate_kek(fresh_keys.root)
    clock.now += 1.0
    assert keys.kek(newer).kek_id == newer
    assert looks.seen == [True, True]


def test_a_retired_key_is_dropped_and_a_broken_directory_keeps_the_keys_in_force(
    fresh_keys: DevKeyPaths,
) -> None:
    keys, _ = live(fresh_keys, Clock())
    old = keys.current_kek.kek_id
    new = rotate_kek(fresh_keys.root)
    assert keys.refresh() is True
    paths = GatewayKeyPaths.under(fresh_keys.root)
    paths.kek_file(old).unlink()
    assert keys.refresh() is True
    assert keys.kek_ids == (new,)
    with pytest.raises(KeystoreError):
        keys.kek(old)
    # `current` names a key whose file is missing (a half-copied secret): keep serving.
    paths.kek_file(new).unlink()
    assert keys.refresh() is False
    assert keys.current_kek.kek_id == new
