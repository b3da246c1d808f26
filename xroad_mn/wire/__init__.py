"""X-Road's wire formats that are not evidence: error bodies and SOAP faults (:mod:`xroad_mn.wire.faults`)."""
