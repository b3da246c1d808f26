"""Everything that speaks HTTP: the aiohttp implementations of the core's one-method transports, and the
server-side middleware every xroad-mn application shares.

* :mod:`xroad_mn.transport.ocsp` — :class:`~xroad_mn.ocsp.OcspTransport` over HTTP;
* :mod:`xroad_mn.transport.timestamp` — :class:`~xroad_mn.timestamp.TimestampTransport` over HTTP;
* :mod:`xroad_mn.transport.globalconf` — :class:`~xroad_mn.confclient.client.ConfigurationTransport`;
* :mod:`xroad_mn.transport.server` — the X-Road error middleware, body limits and read timeouts.

The protocol modules below never import aiohttp; they take these through their protocols.
"""
