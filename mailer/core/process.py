"""Who holds a lease or runs a send: ``host:pid:token``, and whether that process still lives.

Leases (scheduled waves) and send runs record their owner so that another
process can tell a live holder from one that crashed: on the same host a
dead pid is known at once; a holder on another host is trusted until its
lease or heartbeat expires.
"""

from __future__ import annotations

import os
import socket
import uuid


def process_owner() -> str:
    """A fresh owner name: ``host:pid:token`` (the token tells runs in one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False when ``owner`` is a process of this host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
