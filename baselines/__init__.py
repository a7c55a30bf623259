"""Reference editors (identity, oracle) and baseline models (InstructPix2Pix, LGIE)."""
