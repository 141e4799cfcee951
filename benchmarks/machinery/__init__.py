"""What the studies share: ``common`` (the command line, output files, the environment record, resuming),
``workers`` (worker processes for sweeps), ``stats`` (means, intervals, paired differences), ``figures``
and ``object_grid`` (drawing records). Not a study: ``benchmarks.replot`` finds the studies beside it."""
