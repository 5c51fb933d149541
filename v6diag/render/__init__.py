"""Renderers: pure functions from reports to text. No look-ups, no state."""
