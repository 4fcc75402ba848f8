"""Benchmarks: each measures Plantwarden and a reference on the same input in the same run."""
