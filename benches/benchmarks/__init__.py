"""asv benchmark suite of randla (see bench_sketch.py)."""
