"""Benchmarks (run by hand, results recorded in bench/results): see bench/README.md."""
