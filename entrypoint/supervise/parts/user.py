"""``--user USER[:GROUP]``: who the app runs as, resolved once in PID 1.

Resolution happens before anything starts (an unknown name is exit 78 with
nothing rendered), with the standard library's ``pwd``/``grp`` (NSS, i.e.
``/etc/passwd`` and ``/etc/group`` in a container).  The result is plain
numbers, so the forked child only makes three system calls between fork and
exec (``setgroups``, ``setgid``, ``setuid``) and never reads a file or calls
into NSS there.  PID 1 itself never changes identity: it must still be able
to signal, reap and SIGKILL the whole tree, and run the render, hooks and
waits as the container's user.

Imported only when ``--user`` is given: ``pwd`` is built in, ``grp`` is a
small extension module; neither costs PID 1 anything otherwise.
"""

from __future__ import annotations

import grp
import os
import pwd

from entrypoint.errors import ConfigError


class Identity:
    """The numbers the child switches to; ``home`` is what HOME becomes when unset."""

    __slots__ = ("gid", "groups", "home", "spec", "uid")

    def __init__(self, spec: str, uid: int, gid: int, groups: list[int], home: str) -> None:
        self.spec = spec
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.home = home

    def __repr__(self) -> str:
        return f"Identity({self.spec!r}, uid={self.uid}, gid={self.gid}, groups={self.groups})"


def _id_number(text: str) -> int | None:
    if text.isascii() and text.isdigit():
        number = int(text)
        if number < 2**32 - 1:  # (uid_t)-1 means "unchanged" to the kernel
            return number
    return None


def _group(text: str, spec: str) -> int:
    gid = _id_number(text)
    if gid is not None:
        return gid
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ConfigError(f"--user {spec}: no group {text!r} in /etc/group") from None


def split_spec(spec: str) -> tuple[str, str | None] | None:
    """USER[:GROUP] as (user, group or None); None when it has not that shape (``:g``, ``u:``)."""
    user, sep, group = spec.partition(":")
    if not user or (sep and not group):
        return None
    return user, (group if sep else None)


def resolve(spec: str) -> Identity:
    """USER[:GROUP] -> numbers.  A name must exist; a numeric uid need not (gid 0 then)."""
    parts = split_spec(spec)
    if parts is None:
        raise ConfigError(f"--user {spec!r}: expected USER[:GROUP] (a name or a number each)")
    user, group = parts
    uid = _id_number(user)
    entry: pwd.struct_passwd | None
    try:
        entry = pwd.getpwuid(uid) if uid is not None else pwd.getpwnam(user)
    except KeyError:
        if uid is None:
            raise ConfigError(f"--user {spec}: no user {user!r} in /etc/passwd") from None
        entry = None
    gid = _group(group, spec) if group is not None else (entry.pw_gid if entry is not None else 0)
    if entry is None:
        # No passwd entry: no supplementary groups, HOME "/" as Docker gives such a uid.
        return Identity(spec, uid if uid is not None else 0, gid, [gid], "/")
    try:
        groups = os.getgrouplist(entry.pw_name, gid)  # initgroups(3) without the side effect
    except OSError:
        groups = [gid]
    return Identity(spec, entry.pw_uid, gid, groups, entry.pw_dir or "/")


def for_app(spec: str) -> Identity | None:
    """The identity to switch to, or None when already that user (a no-op).

    Not root and another user asked for: exit 78, since only root may switch.
    """
    ident = resolve(spec)
    if ident.uid == os.geteuid() and ident.gid == os.getegid():
        return None
    if os.geteuid() != 0:
        raise ConfigError(
            f"--user {spec}: running as uid {os.geteuid()}, not root, so cannot switch to "
            f"uid {ident.uid} gid {ident.gid} (run the container as root, or drop --user)")
    return ident


def app_environment(env: dict[str, str], ident: Identity) -> dict[str, str]:
    """HOME from passwd when the app's environment has none of its own.

    Engines set ``HOME`` for the container's user (``/root`` for root) before
    we start; that value is root's, not the app's, so it counts as none.
    """
    home = env.get("HOME")
    if home is not None and home != _own_home():
        return env
    return {**env, "HOME": ident.home}


def _own_home() -> str | None:
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return None
