"""Supervision layer: the PID-1 loop.  Standard library only — this package is
resident for the container's whole life and must stay small."""
