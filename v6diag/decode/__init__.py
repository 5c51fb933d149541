"""Decoders: pure functions from raw frames to typed records. Never raise on
hostile input: a packet that should parse and does not is reported as malformed."""
