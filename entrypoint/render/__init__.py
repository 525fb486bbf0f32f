"""Rendering layer: what templates become.  Pure functions from (template,
variables) to bytes, plus the all-or-nothing writer."""
