"""Transparency-log formats both sides check: the RFC 9162 Merkle tree and its proofs, C2SP
checkpoint notes and C2SP witness cosignatures.

The gateway's store builds and signs them; the partner client library (``adapters``) checks
them. This package is pure apart from ``cryptography``: it imports nothing from the store, the
server or SQLAlchemy, so a partner system installs it without the gateway's storage.
"""
