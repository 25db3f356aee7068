"""The partner-side source runtime: one process a partner runs next to its own system.

It serves Ketenpoort's sealed source contract (adapters.source_server) and asks the partner's
system, through an adapter configured by a mapping file, only for the fields and persons the
gateway asked about (docs/partners/source-runtime.md).
"""
