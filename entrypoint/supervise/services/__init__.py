"""Several services in one container: s6-style service directories under the one PID 1.

:mod:`.config` reads and validates ``--services-dir`` (every problem at once,
offline, so ``check --services-dir`` and ``run`` refuse the same directories);
:mod:`.output` frames each service's output into whole ``NAME | `` lines.
Imported by PID 1: standard library only, plain classes with ``__slots__``.
"""
