"""Benchmark scripts: ``python -m benchmarks.gradient_ratios``, ``python -m benchmarks.spectral_conv_speed``."""
