"""Benchmarks: `make bench` runs them all and prints the table docs/benchmarks.md shows."""
