"""entrypoint: a container entrypoint runtime.

Layers (data flows one way): ``context`` (where values come from) ->
``render`` (what templates become) -> files -> ``supervise`` (the PID-1 loop,
standard library only).  ``cli`` and ``commands`` only wire them together.

This module must stay import-light: PID 1 imports it.
"""

__version__ = "0.3.0"
