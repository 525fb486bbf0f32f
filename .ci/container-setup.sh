#!/usr/bin/env bash
# Prepare what tests/test_container.py needs: podman & friends, and a locally
# made Debian+Python base rootfs (nothing can be pulled from a registry).
# Idempotent; the rootfs tarball is cached OUTSIDE the repo and reused.
# The Debian mirror is read at run time from apt's own configuration.
set -euo pipefail

CACHE_DIR="${ENTRYPOINT_CI_CACHE:-/var/cache/entrypoint-ci}"
SUITE="${ENTRYPOINT_CI_SUITE:-bookworm}"
TARBALL="$CACHE_DIR/debian-python-$SUITE.tar"
# The JVM example on the bundle: a Debian JRE without python3 (about 40 s, 390 MB).
JRE_TARBALL="$CACHE_DIR/debian-jre-$SUITE.tar"
PACKAGES=(podman runc catatonit mmdebstrap uidmap)

log() { printf '[container-setup] %s\n' "$*" >&2; }

need_packages() {
    local missing=()
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing: ${missing[*]}"
        if [ "$(id -u)" -ne 0 ]; then
            log "not root: cannot apt-get install; the container test will skip"
            return 0
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# The first "URIs:" of a deb822 source carrying $SUITE (not -security/-updates),
# or the first matching one-line "deb" entry.
debian_mirror() {
    local uri
    uri=$(awk -v suite="$SUITE" '
        /^URIs:/   { uris = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) { print uris; exit } }
    ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)
    fi
    printf '%s' "$uri"
}

build_rootfs() {
    if [ -f "$TARBALL" ] && [ -s "$TARBALL" ]; then
        log "cached base rootfs: $TARBALL"
        return 0
    fi
    command -v mmdebstrap >/dev/null || { log "mmdebstrap missing"; return 0; }
    local mirror
    mirror=$(debian_mirror)
    if [ -z "$mirror" ]; then
        log "no Debian mirror configured for $SUITE; cannot build the base rootfs"
        return 0
    fi
    mkdir -p "$CACHE_DIR"
    log "building the $SUITE + python3 rootfs (about 20 s)"
    mmdebstrap --quiet --variant=apt --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$CACHE_DIR/partial-$SUITE.tar" "$mirror"
    mv "$CACHE_DIR/partial-$SUITE.tar" "$TARBALL"
}

build_jre_rootfs() {
    if [ -f "$JRE_TARBALL" ] && [ -s "$JRE_TARBALL" ]; then
        log "cached JRE rootfs: $JRE_TARBALL"
        return 0
    fi
    command -v mmdebstrap >/dev/null || return 0
    local mirror
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || return 0
    mkdir -p "$CACHE_DIR"
    log "building the $SUITE + openjdk-17-jre-headless rootfs (about 40 s)"
    mmdebstrap --quiet --variant=apt --include=openjdk-17-jre-headless \
        "$SUITE" "$CACHE_DIR/partial-jre-$SUITE.tar" "$mirror"
    mv "$CACHE_DIR/partial-jre-$SUITE.tar" "$JRE_TARBALL"
}

need_packages
build_rootfs
build_jre_rootfs
