"""Checking the addresses a user gives (a server URL, Kafka's host:port list) before anything
connects, so a typo is one clear line, not a library's traceback. Messages never repeat the
address: it may carry a password."""

from __future__ import annotations

from urllib.parse import urlsplit


def check_http_url(url: str) -> str:
    """`url` if it is http(s)://host[:port][/path] with a port in 1-65535, else ValueError."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("not a valid URL (expected http://host:port or https://host:port)")
    if not parts.hostname:
        raise ValueError("not a valid URL (no host)")
    if port == 0:
        raise ValueError("not a valid URL (port 0)")
    return url


def check_host_ports(addresses: str) -> str:
    """`addresses` if each comma-separated entry is host:port with a port in 1-65535 (an IPv6
    host in brackets), else ValueError."""
    for address in addresses.split(","):
        host, colon, port = address.strip().rpartition(":")
        if not colon or not host or host in ("[", "[]"):
            raise ValueError(f"{address.strip()!r} is not host:port")
        if host.startswith("[") != host.endswith("]"):
            raise ValueError(f"{address.strip()!r}: broken IPv6 host (use [addr]:port)")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{address.strip()!r}: port {port!r} is not in 1-65535")
    return addresses
