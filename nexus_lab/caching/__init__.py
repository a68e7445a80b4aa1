"""Cache benchmarks and the read/write workload that drives them."""
