"""Fixtures shared by the tests and the benchmarks (not used by the product)."""
