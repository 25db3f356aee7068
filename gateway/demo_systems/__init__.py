"""Stand-ins for the systems partners already run, served on loopback.

The demo (`ketenpoort demo`) starts them so that its partners answer through the source
runtime as real partners would, and the tests of the source runtime's adapters run against
them: a FHIR R4 server for a GGZ provider (fhir_server) and a police REST/JSON service
(police_rest). Each serves real HTTP on 127.0.0.1, counts what it is asked, and can be told
to misbehave (slow, 5xx, a malformed body) so that the adapters' failure handling is tested
against a real socket rather than a mock. They are demo and test systems: no persistence,
no TLS of their own (the adapters' TLS and client-certificate settings are tested against
them behind a TLS-wrapped socket, see loopback.py).
"""
