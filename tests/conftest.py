"""Suite-wide setup.

``entrypoint run`` publishes its state to ``/run/entrypoint/state.json`` by default; on the test
host that directory is the machine's, not the suite's.  Every test that wants a state file names
one (``ENTRYPOINT_STATE_FILE`` or ``--state-file``), so the inherited default is switched off.
"""

from __future__ import annotations

import os

os.environ["ENTRYPOINT_STATE_FILE"] = ""
