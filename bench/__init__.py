"""Benchmarks: each runnable with one command, each measuring convo against a baseline in the same run."""
