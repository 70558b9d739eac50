"""Benchmarks: one script per benchmark, each measured beside its baseline (see README.md)."""
