"""The Host names the server answers to (Starlette's TrustedHostMiddleware refuses others with a 400).

Why: DNS rebinding. A web page on evil.example can point its own name at 127.0.0.1 and then read the
local server through the visitor's browser as a same-origin site; the one trace of it is the ``Host``
header, which names evil.example. So the server answers only to the names of the address it is bound
to (for a loopback address: localhost, 127.0.0.1 and [::1]; for all interfaces also this machine's
name), on any port, plus the names its operator lists (``pixsearch serve --allowed-host``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from pixsearch.errors import ConfigError

__all__ = ["LOOPBACK_NAMES", "allowed_hosts", "host_name"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_ANY = ("", "0.0.0.0", "::")  # noqa: S104 - names of "every interface", compared, not bound


def host_name(name: str) -> str:
    """A name as a Host header carries it, without the port: lower case, an IPv6 address in brackets,
    ``*.example.org`` for a domain and its subdomains. ConfigError for what no Host header can match."""
    n = name.strip().lower()
    bare = n[1:-1] if n.startswith("[") and n.endswith("]") else n
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        ip = None
    if ip is not None:
        return f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    label = n[2:] if n.startswith("*.") else n
    if not label or any(c in label for c in ":/[]*@ ") or label.startswith(".") or label.endswith("."):
        raise ConfigError(f"{name!r} is not a host name (give a name or an IP address, no port)")
    return n


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> list[str]:
    """Host names to accept for a server bound to ``bind``, plus ``extra`` (the operator's)."""
    names: list[str] = []
    if bind.strip() in _ANY:
        names += [*LOOPBACK_NAMES, host_name(socket.gethostname())]
    else:
        names.append(host_name(bind))
        if _is_loopback(bind):
            names += LOOPBACK_NAMES
    names += [host_name(n) for n in extra]
    return list(dict.fromkeys(names))
