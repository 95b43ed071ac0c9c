"""Which hosts the gallery's relay may fetch from: public addresses, plus an explicit allow-list.

The URLs the relay fetches come from XCom values, which are untrusted (a user role may write them
through Airflow's REST API). Without a rule the api-server would fetch its own loopback services,
the cloud metadata endpoint or the office network for anyone able to forge a result. So a host is
fetched only when every address it resolves to is public, or when it is named in
``[midjourney] relay_allowed_hosts`` (a private CDN, the emulator in a test stack). Addresses are
checked after DNS resolution, the connection goes to the address that was checked, and every
redirect is checked again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CONFIG_OPTION", "CONFIG_SECTION", "AllowList", "is_public", "relay_allow_list"]

CONFIG_SECTION = "midjourney"
CONFIG_OPTION = "relay_allowed_hosts"
#: The option as Airflow's provider-info schema describes config (``airflow config list`` shows it).
CONFIG_OPTION_INFO = {
    "description": "Hosts the UI gallery may relay pictures from although they are not public addresses"
    " (a private CDN, a store on the office network, the emulator in a test stack). Comma-separated host"
    " names (*.corp.example for subdomains), host:port, IP addresses or networks (10.20.0.0/16). Empty:"
    " only hosts whose every address is public. Loopback, private, link-local and metadata addresses are"
    " refused unless named here.",
    "version_added": "0.5.0",
    "type": "string",
    "example": "cdn.corp.example, 127.0.0.1:8765",
    "default": "",
}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (never loopback, private, link-local, shared or reserved).

    An IPv6 address carrying an IPv4 one (mapped, 6to4, Teredo) is judged by that IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class _Entry:
    host: str | None = None  # a host name ("*.example.com" for its subdomains)
    network: IPNetwork | None = None
    port: int | None = None  # None: any port

    def matches(self, host: str, port: int, addresses: Iterable[IPAddress]) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            if self.host.startswith("*."):
                return host.endswith(self.host[1:])
            return host == self.host
        network = self.network
        assert network is not None
        found = list(addresses)
        return bool(found) and all(address in network for address in found)


@dataclass(frozen=True)
class AllowList:
    """Hosts fetched even when private: names, ``name:port``, IP addresses or networks (CIDR)."""

    entries: tuple[_Entry, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """``"cdn.corp, 10.20.0.0/16, 127.0.0.1:9090, [::1]:9090, *.cdn.corp"`` (comma or space separated).

        Raises ValueError naming the entry that is none of these.
        """
        entries = []
        for raw in text.replace(",", " ").split():
            entries.append(_parse_entry(raw.strip().lower()))
        return cls(tuple(entries))

    def allows(self, host: str, port: int, addresses: Iterable[IPAddress]) -> bool:
        """Whether the allow-list names this host (and port), whatever its addresses are."""
        found = list(addresses)
        return any(entry.matches(host.lower().rstrip("."), port, found) for entry in self.entries)


def _parse_entry(raw: str) -> _Entry:
    try:
        return _Entry(network=ipaddress.ip_network(raw.strip("[]"), strict=False))
    except ValueError:
        pass
    host, port = raw, None
    if raw.startswith("["):  # [v6]:port
        inside, _, rest = raw[1:].partition("]")
        host, port = inside, _port(rest.removeprefix(":"), raw)
    elif raw.count(":") == 1:
        host, _, text = raw.partition(":")
        port = _port(text, raw)
    try:
        return _Entry(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    name = host.removeprefix("*.")
    if not name or not all(part and part.replace("-", "").isalnum() for part in name.split(".")):
        raise ValueError(
            f"[{CONFIG_SECTION}] {CONFIG_OPTION}: {raw!r} is not a host name, host:port, IP address or network"
        )
    return _Entry(host=host.rstrip("."), port=port)


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"[{CONFIG_SECTION}] {CONFIG_OPTION}: {raw!r} has no valid port")
    return int(text)


def relay_allow_list() -> AllowList:
    """The allow-list from Airflow's configuration (``AIRFLOW__MIDJOURNEY__RELAY_ALLOWED_HOSTS``)."""
    from airflow.configuration import conf

    return AllowList.parse(conf.get(CONFIG_SECTION, CONFIG_OPTION, fallback="") or "")
