"""The pieces the supervision loop uses: spawning, signals, the process tree, the kill window,
the state file, the app's identity, and the inotify readers (``--watch``, ``--log-file``)."""
