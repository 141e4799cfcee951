"""A third-party-style plugin: importing it registers one strategy."""

from spectral_init import register_variance_scaling

register_variance_scaling(
    "plugin-fan-out",
    scale=1.0,
    fan="out",
    distribution="complex_normal",
    description="Test plugin: E|w|² = gain²/out.",
)
