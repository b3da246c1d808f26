"""Ready adapters, configured by TOML, no code: :mod:`adapters.ready.sql` (parameterised read-only queries
over any SQLAlchemy database as REST endpoints), :mod:`adapters.ready.http` (an existing REST API behind
X-Road with path and header mapping), :mod:`adapters.ready.soap` (an existing SOAP service behind X-Road,
its X-Road header rewritten). ``xroad-mn adapter serve CONFIG.toml`` serves one."""
