"""Gatehouse's web console (server-rendered; uses only the public admin, identity and audit APIs)."""
