"""The ``gatehouse`` command line."""
