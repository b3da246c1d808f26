"""xroad-mn protocol core: X-Road 7 compatible identifiers, errors, evidence and global configuration.

The core is pure and reusable: the security server, the central registry and the adapters build on it,
and it imports none of them.
"""

__version__ = "0.1.0"
