"""Gatehouse audit subscriber: stores every event of the bus in MongoDB; ``tail`` shows them.

It has no ``errors.py``: it serves no API of its own and uses the shared ``gatehouse_contracts.errors``.
"""
