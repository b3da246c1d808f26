"""``python -m xroad_mn`` runs the ``xroad-mn`` command."""

from xroad_mn.cli.main import main

main()
