"""What is measured of a model's spectral weights rather than drawn for them: ``audit`` (each weight against
each strategy's target), ``calibrate`` (rescaling on a batch) and ``stack_profile`` (the mean field of a deep
plain ReLU stack)."""
