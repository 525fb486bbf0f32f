#!/bin/sh
# Runs as root before the app starts (hooks run as the container's user, not --user):
# a volume mounted at run time is root-owned, so hand its top directory to the app,
# as the postgres image does for PGDATA.  Only the top level, and only when needed:
# a large existing data directory is not walked on every start.
set -eu
dir=/var/lib/app
mkdir -p "$dir"
if [ "$(stat -c %u "$dir")" != "$(id -u app)" ]; then
    chown app:0 "$dir"
    chmod 0770 "$dir"
fi
