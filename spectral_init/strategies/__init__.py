"""The strategies: ``scaling`` (the one parametric core, E|w|² = gain²/fan, and the complex samplers),
``presets`` (the named variance-scaling strategies on top of it), ``edge_of_chaos`` and ``mup``. Importing
this package registers them all."""
