"""Migration scripts, oldest first: ``n0001_initial`` creates the node's configuration tables,
``n0002_messagelog`` the message log."""
