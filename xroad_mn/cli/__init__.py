"""The ``xroad-mn`` command: a thin shell over what the applications call.

:mod:`xroad_mn.cli.main` composes the root command from the ``xroad_mn.cli`` entry points and holds the one
error funnel; :mod:`~xroad_mn.cli.archive`, :mod:`~xroad_mn.cli.asic`, :mod:`~xroad_mn.cli.globalconf` and
:mod:`~xroad_mn.cli.demo` are the core's own sub-commands.
"""
