"""A plugin whose entry point is a function that registers when called."""

from spectral_init import register_variance_scaling


def register() -> None:
    register_variance_scaling(
        "plugin-by-function",
        scale=3.0,
        fan="in",
        distribution="complex_normal",
        description="Test plugin registered by a function.",
    )
