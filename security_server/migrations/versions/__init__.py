"""Migration scripts, oldest first: ``n0001_initial`` creates every table."""
