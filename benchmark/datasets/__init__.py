"""Dataset loaders: one module per benchmark format, plus ``synth``, the embedded default."""
