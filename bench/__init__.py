"""Benchmarks of tekil beside their references, and `tekil bench`, which runs them all."""
