"""Start-up and finish steps: render, hooks, waits (each in a fork of PID 1), secrets, and the finish hooks.

:mod:`.forks` runs them in order from PID 1; the other modules are what each step does.
"""
