"""xroad-mn security server (the node): client proxy, server proxy, signer, message log and admin API.

So far: its home and settings (:mod:`security_server.home`, :mod:`security_server.settings`), its database
(:mod:`security_server.db`: what X-Road's ``serverconf`` holds, plus the records of its token) and endpoint
matching (:mod:`security_server.endpoints`)::

    >>> from pathlib import Path
    >>> from security_server.home import create_home, open_home
    >>> settings = open_home(create_home(Path("ss1"), {"address": "127.0.0.2"}))  # doctest: +SKIP
"""
