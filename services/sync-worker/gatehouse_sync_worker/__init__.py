"""Gatehouse sync-worker: talks to targets, fills tool caches, drives target status.

It has no ``errors.py``: it serves no API of its own and uses the shared ``gatehouse_contracts.errors``.
"""
