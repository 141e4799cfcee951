"""Internal: the run-time plumbing that the command-line tools share, kept out of the libraries.

``spectral-init``, ``python -m ptycho_torch.train`` and every benchmark use these; neither
``spectral_init`` nor ``ptycho_torch``'s library modules import them (a test checks it):

- ``threads``: the thread policy of a command (``--threads``, the busy-machine cap);
- ``usage``: usage errors and exit codes, pydantic errors in one line, signals as interrupts;
- ``output_files``: output-directory locks, earlier results moved aside, atomic writes;
- ``progress``: the progress bar or final progress line.

Not an API: names here change without notice.
"""
