"""xroad-mn adapters: the SDK that exposes an agency's registry as an X-Road service, and ready adapters."""
