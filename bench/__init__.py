"""Gatehouse's benchmarks (`make bench`); see bench/run.py and BENCHMARKS.md."""
