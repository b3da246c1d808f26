"""xroad-mn central registry: members, security servers, trust services and signed global configuration."""
