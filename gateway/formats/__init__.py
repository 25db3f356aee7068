"""The formats both sides of the exchange read and write: the gateway, and the partner side
(adapters/, the lean base install). Sealed parts of contract messages as protobuf, the
gateway's signed key statement, the default log origin.

Modules here import only the generated contract (gateway.api), gateway.crypto and each
other, never the gateway's server, store, use cases or policy code, so that a partner
installs them without the gateway (tests/test_partner_boundary.py holds them to it).
"""
