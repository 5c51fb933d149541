"""Analysers: pure state machines over decoded records; no I/O."""
