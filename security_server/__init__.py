"""xroad-mn security server (the node): client proxy, server proxy, signer, message log and admin API.

So far: its home and settings (:mod:`security_server.home`, :mod:`security_server.settings`), its database
(:mod:`security_server.db`: what X-Road's ``serverconf`` holds, plus the records of its token), endpoint
matching (:mod:`security_server.endpoints`), its certificates and OCSP (:mod:`security_server.certs`,
:mod:`security_server.ocsp`), registration (:mod:`security_server.registration`), its use cases as one
async library for the admin API and the CLI (:mod:`security_server.operations`), the admin REST API
(:mod:`security_server.api`) and the served applications (:mod:`security_server.app`: ``run_node``)::

    >>> from pathlib import Path
    >>> from security_server.home import create_home, open_home
    >>> settings = open_home(create_home(Path("ss1"), {"address": "127.0.0.2"}))  # doctest: +SKIP
"""
