"""Benchmarks run by `imgen-tui bench`: measured, printed as tables, never asserted in tests."""
