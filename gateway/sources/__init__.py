"""The gateway's side of the sources: how it calls a partner's own system (the gRPC source
contract over mutual TLS, pinned to the certificates registered to that partner)."""
