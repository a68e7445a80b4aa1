"""Poll benchmarks, the seeded vote generator and the EXPLAIN helpers the notebooks use."""
