"""Detection benchmarks and the scoring of the detector against labelled traffic."""
