"""Settings pages: account, billing entities, tax rates, API keys."""
