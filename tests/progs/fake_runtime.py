"""A stand-in for PID 1 that publishes a state file, for `status` tests without `run`.

Copied to a file named ``entrypoint`` by the tests (so its command line reads
like ours).  argv: STATE_PATH PHASE [APP_PID_MODE]; it starts a ``sleep``
app and one child it never reaps (a zombie), writes the state file in the
writer's format atomically, prints "ready PID APP ZOMBIE" and lives until its
standard input closes.  APP_PID_MODE "dead" publishes a pid that has exited.
"""

import json
import os
import sys
import time

state_path, phase = sys.argv[1], sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "alive"
app = os.posix_spawn("/bin/sleep", ["sleep", "120"], os.environ)
zombie = os.posix_spawn("/bin/true", ["true"], os.environ)
app_pid = app
if mode == "dead":
    app_pid = os.posix_spawn("/bin/true", ["true"], os.environ)
    os.waitpid(app_pid, 0)
document = {"version": 1, "runtime_pid": os.getpid(), "phase": phase,
            "app": {"pid": app_pid, "restarts": 2, "last_exit_code": 3, "command": ["sleep", "120"]},
            "changed_at": time.time()}
temp = state_path + ".tmp"
with open(temp, "w") as f:
    f.write(json.dumps(document) + "\n")
os.rename(temp, state_path)
print(f"ready {os.getpid()} {app} {zombie}", flush=True)
sys.stdin.read()
os.kill(app, 9)
