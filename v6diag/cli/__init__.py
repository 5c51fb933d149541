"""Command-line layer: one module per command; parse -> core -> render."""
