"""Message exchange between security servers: signing, mutual TLS on port 5500, and peer trust.

* :mod:`security_server.exchange.signer` — :class:`~security_server.exchange.signer.BatchSigner`, X-Road's
  batch signer over the node's token and OCSP cache;
* :mod:`security_server.exchange.tls` — the node's TLS contexts on its authentication certificate;
* :mod:`security_server.exchange.peers` — :class:`~security_server.exchange.peers.PeerTrust` (is this TLS
  certificate a registered security server of that member?), provider address selection and
  :class:`~security_server.exchange.peers.PeerConnector` (fastest of the provider's servers).

Example::

    >>> tls = NodeTlsContexts.create(token, await active_authentication_key(store), trust)  # doctest: +SKIP
    >>> peers = PeerConnector(tls.client, PeerTrust(trust, shared))  # doctest: +SKIP
    >>> response = await peers.post(provider_addresses(shared, provider, None), headers, body,
    ...                             provider=provider)  # doctest: +SKIP
"""
