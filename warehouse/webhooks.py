"""Posting alerts to webhooks, without letting a rule's URL reach what it should not.

A rule's webhook URL comes from an API user, and the pipeline host posts to it: a URL aimed at
the API itself, at the machine's loopback services or at a cloud metadata endpoint
(169.254.169.254) would make Loom send requests on the user's behalf where the user cannot reach
(SSRF). So a URL is refused, when the rule is created and again before every delivery, when any
address its host resolves to is:

* the API's own: its bind address and port, any loopback address on its port, its public URL's
  host and port, and the host and port a rule was created through;
* loopback (``127.0.0.0/8``, ``::1``), unless ``LOOM_ALERT_ALLOW_LOOPBACK`` (a receiver on the
  same machine: tests, a single-machine setup); the API's own address stays refused;
* link-local (``169.254.0.0/16`` with the metadata endpoints, ``fe80::/10``), unspecified,
  multicast, reserved or shared (``100.64.0.0/10``), or a known metadata address.

Private networks (``10/8``, ``172.16/12``, ``192.168/16``, ``fc00::/7``) are allowed: a
self-hosted warehouse's receivers (a chat bridge, an incident tool) are usually internal. A
delivery connects to the very address that was checked (the host is pinned, TLS still verifies
the name), so a DNS answer that changes between the check and the connection cannot redirect it,
and redirects are not followed. The operator's own ``LOOM_ALERT_WEBHOOK`` is trusted as is.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from warehouse.settings import Settings

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
USER_AGENT = "loom-alerts/1"
EVERY_INTERFACE = frozenset({"0.0.0.0", "::", ""})


class WebhookRefused(ValueError):
    """The URL may not be posted to; the message says why (it names no resolved address)."""


class WebhookUnresolvable(WebhookRefused):
    """The URL's host does not resolve (now: DNS may answer later)."""


@dataclass(frozen=True)
class Target:
    """A URL checked, and the address to connect to."""

    url: str
    address: IpAddress


@dataclass(frozen=True)
class WebhookPolicy:
    allow_loopback: bool
    own_places: frozenset[tuple[str, int]]  # (host, port) the API is reached at
    own_port: int  # the port it binds, on every interface when its host is 0.0.0.0 or ::
    binds_everywhere: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookPolicy:
        places = set() if settings.host in EVERY_INTERFACE else {(settings.host, settings.port)}
        if settings.public_url:
            parts = urlsplit(settings.public_url)
            if parts.hostname:
                places.add((parts.hostname, parts.port or _default_port(parts.scheme)))
        return cls(
            allow_loopback=settings.alert_allow_loopback,
            own_places=frozenset(places),
            own_port=settings.port,
            binds_everywhere=settings.host in EVERY_INTERFACE,
        )

    def also_reached_at(self, host: str, port: int) -> WebhookPolicy:
        """The policy, knowing one more address the API answers on (a request's Host)."""
        return replace(self, own_places=self.own_places | {(host, port)})

    def check(self, url: str) -> Target:
        """The address ``url`` connects to, once every address its host resolves to is allowed;
        :class:`WebhookRefused` otherwise."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebhookRefused("the URL must be http:// or https:// with a host")
        try:
            port = parts.port or _default_port(parts.scheme)
        except ValueError:
            raise WebhookRefused("the URL's port is not a number from 1 to 65535") from None
        addresses = _resolve(parts.hostname, port)
        own = self._own_addresses()
        for address in addresses:
            if (address, port) in own or self._on_every_interface(address, port):
                raise WebhookRefused("the URL is aimed at the Loom API itself")
            reason = refusal(address, self.allow_loopback)
            if reason is not None:
                raise WebhookRefused(f"the URL's host resolves to {reason}")
        return Target(url, addresses[0])

    def _on_every_interface(self, address: IpAddress, port: int) -> bool:
        """Any loopback address on the API's port is the API (however it binds: 127.0.0.1,
        ::1, both); so is every address of this machine's when it binds every interface."""
        if port != self.own_port:
            return False
        return address.is_loopback or (self.binds_everywhere and address in own_machine_addresses())

    def _own_addresses(self) -> set[tuple[IpAddress, int]]:
        own: set[tuple[IpAddress, int]] = set()
        for host, port in self.own_places:
            try:
                own.update((address, port) for address in _resolve(host, port))
            except WebhookRefused:
                continue  # a name this host cannot resolve cannot be reached from it either
        return own


def refusal(address: IpAddress, allow_loopback: bool) -> str | None:
    """Why an address may not receive a rule's webhook, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address (see LOOM_ALERT_ALLOW_LOOPBACK)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "an address that is not a host's"
    if not (address.is_global or address.is_private):
        return "an address of a shared or reserved range"
    return None


def own_machine_addresses() -> frozenset[IpAddress]:
    """The addresses of this machine's name: an API bound to every interface answers on them."""
    try:
        _, _, names = socket.gethostbyname_ex(socket.gethostname())
    except OSError:
        return frozenset()
    return frozenset(ipaddress.ip_address(name) for name in names)


def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise WebhookUnresolvable(f"the URL's host {host!r} does not resolve") from None
    # Scope ids (fe80::1%eth0) are not part of the address.
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt got: an HTTP status, or the error that prevented one."""

    status_code: int | None
    error: str | None
    seconds: float
    refused: bool = False  # by the policy: retrying will not change it

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def worth_retrying(self) -> bool:
        """A refused URL, or a 4xx other than a timeout or a rate limit, will not change by
        retrying."""
        code = self.status_code
        return not self.refused and (code is None or code >= 500 or code in (408, 429))

    def describe(self) -> str:
        what = f"HTTP {self.status_code}" if self.status_code is not None else self.error
        return f"{what} ({self.seconds:.2f} s)"


def post_json(
    url: str,
    body: dict[str, Any],
    timeout_s: float,
    policy: WebhookPolicy | None = None,
) -> Outcome:
    """POST ``body`` once, within ``timeout_s`` in all (connect, send, wait, read); checked
    against ``policy`` and pinned to the checked address when one is given."""
    started = time.monotonic()
    content = orjson.dumps(body)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    extensions: dict[str, Any] = {}
    try:
        if policy is not None:
            target = policy.check(url)
            url, host = _pinned(url, target.address)
            headers["Host"] = host
            extensions["sni_hostname"] = urlsplit(target.url).hostname
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
            request = client.build_request(
                "POST", url, content=content, headers=headers, extensions=extensions
            )
            response = _send_within(client, request, timeout_s)
        return Outcome(response.status_code, None, time.monotonic() - started)
    except WebhookRefused as refused:
        permanent = not isinstance(refused, WebhookUnresolvable)
        return Outcome(None, f"refused: {refused}", time.monotonic() - started, permanent)
    except httpx.TimeoutException:
        return Outcome(None, f"timed out after {timeout_s:g} s", time.monotonic() - started)
    except httpx.HTTPError as error:
        return Outcome(None, f"{type(error).__name__}: {error}", time.monotonic() - started)


def _send_within(client: httpx.Client, request: httpx.Request, timeout_s: float) -> httpx.Response:
    """httpx's timeouts bound each read, not the whole answer: a receiver trickling a byte a
    second would hold a delivery forever. The body is read against one deadline."""
    deadline = time.monotonic() + timeout_s
    response = client.send(request, stream=True)
    try:
        for _ in response.iter_raw(1024):
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the answer took too long", request=request)
    finally:
        response.close()
    return response


def _pinned(url: str, address: IpAddress) -> tuple[str, str]:
    """``url`` with its host replaced by ``address``, and the Host header it had."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    netloc = f"{userinfo}@{netloc}" if userinfo else netloc
    return urlunsplit(parts._replace(netloc=netloc)), host
