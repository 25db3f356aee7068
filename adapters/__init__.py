"""The partner side of Ketenpoort: the client library a partner system uses to call the gateway
and open sealed answers, and the source server through which the gateway fetches that
partner's own fields from its system (sealed, signed answers)."""

from adapters.channels import TlsMaterial
from adapters.client import OpenedDisclosure, PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys, GatewayKeysError, GatewayTrust
from adapters.log_witness import (
    LogRewritten,
    LogRolledBack,
    LogWitness,
    LogWitnessError,
    Witnessed,
)
from adapters.sealed import OpenedTriage, open_disclosure, open_triage
from adapters.source_requests import RequestOpening, SourceKeyRing
from adapters.source_server import (
    AnswerSealing,
    InMemoryBackend,
    SourceBackend,
    SubjectRecord,
    serve_source,
)
from adapters.tokens import TokenSource, mint_token
from gateway.crypto.source_answers import SourceAnswerSigner

__all__ = [
    "AnswerSealing",
    "GatewayKeys",
    "GatewayKeysError",
    "GatewayTrust",
    "InMemoryBackend",
    "LogRewritten",
    "LogRolledBack",
    "LogWitness",
    "LogWitnessError",
    "OpenedDisclosure",
    "OpenedTriage",
    "PartnerClient",
    "PartnerCredentials",
    "RequestOpening",
    "SourceBackend",
    "SourceAnswerSigner",
    "SourceKeyRing",
    "SubjectRecord",
    "TlsMaterial",
    "TokenSource",
    "Witnessed",
    "mint_token",
    "open_disclosure",
    "open_triage",
    "serve_source",
]
