"""X-Road's wire formats that are not evidence, all without I/O.

* :mod:`xroad_mn.wire.faults`: REST error bodies and SOAP faults.
* :mod:`xroad_mn.wire.rest`: the REST message protocol (PR-REST r1): the REST header part, header filtering,
  the request hash, the consumer's consistency check and the REST metaservice bodies.
* :mod:`xroad_mn.wire.soap`: the SOAP 4.0 message protocol (PR-MESS): parsing, building, attachments (SwA,
  MTOM) and the request hash; :mod:`xroad_mn.wire.soapmeta` its metaservices.
* :mod:`xroad_mn.wire.parts`: a MIME attachment with its headers, shared by SOAP and the transport message.
* :mod:`xroad_mn.wire.transport`: the node-to-node transport message (PR-MESSTRANSP ``multipart/mixed``) and
  its HTTP headers.
"""
