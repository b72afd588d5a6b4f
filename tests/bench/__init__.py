"""Smoke runs of the benchmarks in `bench/`, at tiny sizes, so they cannot rot (no timing is asserted)."""
