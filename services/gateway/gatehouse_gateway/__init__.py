"""Gatehouse gateway: the admin API for gateways and targets, and the MCP endpoint."""
