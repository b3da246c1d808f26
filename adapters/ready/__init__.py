"""Ready adapters, configured by TOML, no code: :mod:`adapters.ready.sql` (parameterised read-only queries
over any SQLAlchemy database as REST endpoints). ``xroad-mn adapter serve CONFIG.toml`` serves one."""
