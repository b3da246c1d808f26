"""``python -m xroad_mn`` runs the ``xroad-mn`` command."""

from xroad_mn.cli import main

main()
