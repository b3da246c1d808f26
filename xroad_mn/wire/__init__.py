"""X-Road's wire formats that are not evidence: error bodies and SOAP faults (:mod:`xroad_mn.wire.faults`),
the SOAP 4.0 message protocol (:mod:`xroad_mn.wire.soap`), its metaservices (:mod:`xroad_mn.wire.soapmeta`)
and attachments (:mod:`xroad_mn.wire.parts`)."""
