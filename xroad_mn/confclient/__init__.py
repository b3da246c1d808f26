"""The configuration client and its on-disk store: download, verify, install and read global configuration.

* :mod:`xroad_mn.confclient.client` — one refresh (or a periodic loop) from the anchor's sources;
* :mod:`xroad_mn.confclient.store` — X-Road's storage layout with ``.metadata`` files;
* :mod:`xroad_mn.confclient.installed` — trust material from an installed directory.
"""
