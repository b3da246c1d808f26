"""xroad-mn security server: client proxy, server proxy, signer, message log and admin API."""
