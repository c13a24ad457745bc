"""Gatehouse identity service: workload identities, credential providers, sessions, token vault."""
