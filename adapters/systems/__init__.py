"""Adapters from the source runtime to the systems partners already run (SQL, CSV, REST, FHIR).

Each implements adapters.source_runtime.adapter.SystemAdapter and is configured by a mapping
file (adapters.source_runtime.mapping)."""
