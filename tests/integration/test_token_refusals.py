"""Certificate-bound, single-use tokens over real mutual TLS: every way a token can fail is
refused with UNAUTHENTICATED or PERMISSION_DENIED, and leaves an auth_refusal record in the
accountability log before the answer leaves."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.channels import TlsMaterial, open_channel
from adapters.tokens import certificate_thumbprint
from gateway.api.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.broker.log_events import RecordKind
from gateway.cli.main import main
from gateway.registry.edits import add_certificate, add_token_key
from gateway.registry.files import entry_path, read_entry, write_entry
from gateway.store.audit_log import AuditLog
from tests.integration.harness import Harness

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED


async def call(
    harness: Harness, token: str | None, tls: TlsMaterial | None = None
) -> grpc.StatusCode:
    """One call over mutual TLS (police's certificate unless ``tls`` says otherwise); OK means
    it got past authentication (the case it asks about does not exist)."""
    channel = open_channel(harness.address, tls or harness.credentials("police").tls)
    stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    try:
        await stub.RequestDisclosure(
            exchange_pb2.DisclosureRequest(case_id="case-none", purpose="case_meeting"),
            metadata=metadata,
            timeout=5,
        )
    except grpc.aio.AioRpcError as exc:
        return OK if exc.code() == grpc.StatusCode.NOT_FOUND else exc.code()
    finally:
        await channel.close()
    return OK


def refusals(log: AuditLog) -> list[tuple[str, str, dict[str, str]]]:
    """(partner, refusal code, detail) of every auth_refusal record, in log order."""
    return [
        (r.event.partner_id, r.event.refusal_code, dict(r.event.detail))
        for r in log.list_records(kinds=[RecordKind.AUTH_REFUSAL], limit=1000)
    ]


def last_refusal(harness: Harness) -> tuple[str, str, dict[str, str]]:
    found = refusals(harness.gateway.log)
    assert found, "no auth_refusal record was written"
    return found[-1]


def police_thumbprint(harness: Harness) -> str:
    tls = harness.credentials("police").tls
    assert tls is not None and tls.cert_pem is not None
    return certificate_thumbprint(tls.cert_pem)


async def test_a_bound_fresh_token_is_accepted_and_nothing_is_logged_as_refused(
    harness: Harness,
) -> None:
    assert await call(harness, harness.token()) == OK
    assert refusals(harness.gateway.log) == []


async def test_a_replayed_token_is_refused(harness: Harness) -> None:
    token = harness.token()
    assert await call(harness, token) == OK
    assert await call(harness, token) == UNAUTHENTICATED
    partner, code, detail = last_refusal(harness)
    assert (partner, code) == ("police", "replayed")
    assert detail["certificate"] == police_thumbprint(harness)
    # The next fresh token still works: only the spent one is refused.
    assert await call(harness, harness.token()) == OK


async def test_concurrent_replays_admit_exactly_one(harness: Harness) -> None:
    token = harness.token()
    codes = await asyncio.gather(*(call(harness, token) for _ in range(6)))
    assert sorted(c.name for c in codes) == ["OK"] + ["UNAUTHENTICATED"] * 5
    assert [c for _, c, _ in refusals(harness.gateway.log)] == ["replayed"] * 5


async def test_a_token_presented_over_another_partners_certificate_is_refused(
    harness: Harness,
) -> None:
    stolen = harness.token("police")
    assert await call(harness, stolen, harness.credentials("ggz").tls) == UNAUTHENTICATED
    partner, code, detail = last_refusal(harness)
    # The caller is who its certificate says; the token's claim is recorded beside it.
    assert (partner, code) == ("ggz", "issuer_mismatch")
    assert detail["claimed_issuer"] == "police"


async def test_a_token_bound_to_another_certificate_of_the_same_partner_is_refused(
    harness: Harness,
) -> None:
    second = harness.new_client_certificate("police")
    cert = x509.load_pem_x509_certificate(second.cert_pem or b"")
    registry = harness.registry
    write_entry(registry, add_certificate(read_entry(entry_path(registry, "police")), cert))
    assert await harness.gateway.reload_registry() == "applied"
    # The second certificate is registered too (a rotation in progress): both connect.
    assert await call(harness, harness.token(), second) == UNAUTHENTICATED
    assert last_refusal(harness)[1] == "wrong_certificate"
    bound_to_second = harness.token(certificate=certificate_thumbprint(second.cert_pem or b""))
    assert await call(harness, bound_to_second, second) == OK
    assert await call(harness, harness.token(certificate=""), second) == UNAUTHENTICATED
    assert last_refusal(harness)[1] == "token_not_bound"


async def test_an_unregistered_certificate_is_refused(harness: Harness) -> None:
    stranger = harness.new_client_certificate("police")  # CA-signed, not registered
    token = harness.token(certificate=certificate_thumbprint(stranger.cert_pem or b""))
    assert await call(harness, token, stranger) == UNAUTHENTICATED
    partner, code, _ = last_refusal(harness)
    assert (partner, code) == ("", "unregistered_certificate")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        # Times relative to the call, not to collection: a long run must not age them.
        ({"now_offset_s": -3600, "lifetime_s": 300}, "expired"),
        ({"now_offset_s": 600, "lifetime_s": 300}, "not_yet_valid"),
        ({"audience": "another-gateway"}, "wrong_audience"),
        ({"lifetime_s": 4 * 3600}, "lifetime_exceeded"),
        ({"key_id": "k_0000000000000000"}, "unknown_key"),
        ({"user_ref": "Jan Jansen"}, "bad_claim"),
    ],
)
async def test_bad_tokens_are_refused_and_logged(
    harness: Harness, overrides: dict[str, object], code: str
) -> None:
    overrides = dict(overrides)
    offset = overrides.pop("now_offset_s", None)
    if isinstance(offset, int):
        overrides["now"] = time.time() + offset
    assert await call(harness, harness.token(**overrides)) == UNAUTHENTICATED
    partner, logged, _ = last_refusal(harness)
    assert (partner, logged) == ("police", code)


async def test_a_role_the_policy_does_not_grant_is_permission_denied(harness: Harness) -> None:
    assert await call(harness, harness.token(role="process_director")) == PERMISSION_DENIED
    assert last_refusal(harness)[:2] == ("police", "role_not_allowed")


async def test_unlisted_algorithms_are_refused(harness: Harness) -> None:
    now = int(time.time())
    claims = {
        "iss": "police",
        "aud": "ketenpoort",
        "iat": now,
        "exp": now + 60,
        "jti": "unlisted-algorithm-0001",
        "role": "case_director",
        "cnf": {"x5t#S256": police_thumbprint(harness)},
    }
    creds = harness.credentials("police")
    # HMAC keyed with public material, and "none": never on any allow-list.
    hmac = jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": creds.token_key_id})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": creds.token_key_id})
    # ES256 is on the gateway's list, but police registered EdDSA only.
    p256 = ec.generate_private_key(ec.SECP256R1())
    es256 = jwt.encode(claims, p256, algorithm="ES256", headers={"kid": creds.token_key_id})
    for token in (hmac, unsigned, es256):
        assert await call(harness, token) == UNAUTHENTICATED
        assert last_refusal(harness)[1] == "algorithm_not_allowed"


async def test_es256_is_accepted_once_registered_for_the_partner(harness: Harness) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    registry = harness.registry
    entry = add_token_key(read_entry(entry_path(registry, "police")), p256.public_key())
    write_entry(registry, entry)
    assert await harness.gateway.reload_registry() == "applied"
    kid = entry.token_keys[-1].kid
    now = int(time.time())
    claims = {
        "iss": "police", "aud": "ketenpoort", "iat": now, "exp": now + 60,
        "jti": "es256-registered-0001", "role": "case_director",
        "cnf": {"x5t#S256": police_thumbprint(harness)},
    }
    token = jwt.encode(claims, p256, algorithm="ES256", headers={"kid": kid})
    assert await call(harness, token) == OK
    # The EdDSA key registered before still works beside it.
    assert await call(harness, harness.token()) == OK


async def test_revoking_a_key_refuses_it_from_the_next_call(harness: Harness) -> None:
    kid = harness.credentials("police").token_key_id
    assert await call(harness, harness.token()) == OK
    assert _partner_cli(harness, "revoke", "police", "--key", kid) == 0
    # No reload: the database records the revocation and the next call reads it.
    assert await call(harness, harness.token()) == UNAUTHENTICATED
    partner, code, detail = last_refusal(harness)
    assert (partner, code, detail["key_id"]) == ("police", "revoked_key", kid)
    # Once the file is reloaded the key is refused by the registry itself.
    assert await harness.gateway.reload_registry() == "applied"
    assert await call(harness, harness.token()) == UNAUTHENTICATED
    assert last_refusal(harness)[1] == "revoked_key"


async def test_revoking_a_partner_is_permission_denied_from_the_next_call(
    harness: Harness,
) -> None:
    assert await call(harness, harness.token()) == OK
    assert _partner_cli(harness, "revoke", "police") == 0
    assert await call(harness, harness.token()) == PERMISSION_DENIED
    assert last_refusal(harness)[:2] == ("police", "revoked_partner")
    # Other partners are untouched.
    assert await call(harness, harness.token("ggz"), harness.credentials("ggz").tls) == OK
    assert await harness.gateway.reload_registry() == "applied"
    assert await call(harness, harness.token()) == PERMISSION_DENIED


async def test_revoking_a_certificate_refuses_connections_with_it(harness: Harness) -> None:
    thumbprint = police_thumbprint(harness)
    assert _partner_cli(harness, "revoke", "police", "--certificate", thumbprint) == 0
    assert await call(harness, harness.token()) == UNAUTHENTICATED
    assert last_refusal(harness)[1] == "revoked_certificate"


async def test_a_certificate_whose_thumbprint_starts_with_a_dash_can_be_revoked(
    harness: Harness, tmp_path: Path
) -> None:
    # One thumbprint in 64 starts with "-", which the command line took for an option: the
    # revocation then failed for that certificate alone (and a rotation run with it).
    tls = harness.new_client_certificate("police")
    assert tls.cert_pem is not None
    while not certificate_thumbprint(tls.cert_pem).startswith("-"):
        tls = harness.new_client_certificate("police")
        assert tls.cert_pem is not None
    thumbprint = certificate_thumbprint(tls.cert_pem)
    cert_file = tmp_path / "police-dash.pem"
    cert_file.write_bytes(tls.cert_pem)
    assert _partner_cli(harness, "rotate", "police", "--certificate", str(cert_file)) == 0
    assert await harness.gateway.reload_registry() == "applied"
    token = harness.token(certificate=thumbprint)
    assert await call(harness, token, tls) == OK
    assert _partner_cli(harness, "revoke", "police", "--certificate", thumbprint) == 0
    assert await call(harness, harness.token(certificate=thumbprint), tls) == UNAUTHENTICATED
    assert last_refusal(harness)[1] == "revoked_certificate"
    # The other certificate of the partner still works.
    assert await call(harness, harness.token()) == OK


async def test_a_missing_token_is_refused_and_logged(harness: Harness) -> None:
    assert await call(harness, None) == UNAUTHENTICATED
    assert last_refusal(harness)[:2] == ("", "missing_token")
    assert await call(harness, "not.a.token") == UNAUTHENTICATED
    assert last_refusal(harness)[1] == "malformed_token"


async def test_refusal_records_hold_no_token_and_the_log_verifies(harness: Harness) -> None:
    token = harness.token()
    await call(harness, token)
    await call(harness, token)
    for record in harness.gateway.log.list_records(kinds=[RecordKind.AUTH_REFUSAL]):
        body = json.dumps(record.event.detail)
        assert token not in body and token.split(".")[2] not in body
    assert harness.gateway.log.verify().ok


def _partner_cli(harness: Harness, *args: str) -> int:
    argv = ["partner", *args, "--registry", str(harness.registry), "--db", harness.db_url]
    return main(argv)


def _signed_claims(harness: Harness, **times: object) -> str:
    """A police token signed with its registered key, with ``times`` as exp/iat/nbf."""
    creds = harness.credentials("police")
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "police", "aud": "ketenpoort", "iat": now, "exp": now + 60,
        "jti": f"time-claims-{time.monotonic_ns()}", "role": "case_director",
        "cnf": {"x5t#S256": police_thumbprint(harness)},
    }
    claims.update(times)
    return jwt.encode(claims, creds.token_key, algorithm="EdDSA",
                      headers={"kid": creds.token_key_id})


@pytest.mark.parametrize(
    "times",
    [
        {"exp": float("nan")},
        {"exp": float("inf")},
        {"exp": float("inf"), "iat": float("inf")},
        {"exp": float("-inf")},
        # NaN compares false with everything: a ten-year token passed the lifetime check.
        {"iat": float("nan"), "exp": int(time.time()) + 10 * 365 * 86400},
        {"nbf": float("nan")},
        {"exp": time.time() + 60.5},
        {"exp": 10**30},
        {"iat": True},
    ],
    ids=["exp-nan", "exp-inf", "both-inf", "exp-minus-inf", "iat-nan-ten-years", "nbf-nan",
         "fraction", "huge", "boolean"],
)
async def test_time_claims_that_are_not_whole_seconds_are_refused_and_logged(
    harness: Harness, times: dict[str, object]
) -> None:
    assert await call(harness, _signed_claims(harness, **times)) == UNAUTHENTICATED
    assert last_refusal(harness)[:2] == ("police", "bad_claim")
    # Integers still pass.
    assert await call(harness, _signed_claims(harness)) == OK


async def test_a_token_of_deeply_nested_json_is_refused_and_logged(harness: Harness) -> None:
    # Two thousand nested brackets fit in a token's size; the JSON parser recursed into them
    # and the call ended in UNKNOWN with a traceback, unrecorded.
    deep = base64.urlsafe_b64encode(b"[" * 2000 + b"]" * 2000).rstrip(b"=").decode()
    header = base64.urlsafe_b64encode(b'{"alg":"EdDSA","kid":"k"}').rstrip(b"=").decode()
    assert await call(harness, f"{header}.{deep}.c2ln") == UNAUTHENTICATED
    assert last_refusal(harness)[1] == "malformed_token"
