"""What runs beside the gRPC server while the gateway serves: every background task of the
gateway (retention, re-wrap and key look, log watch, policy and registry reload, the plan's
monitoring, readiness checks) is built on one periodic-task class, ``periodic.PeriodicTask``,
so that each starts, wakes and stops the same way."""
