"""Azure sign-in and ARM endpoints, shared by the sync and the tag push: credentials, endpoint checks, http policy.

Importing this module loads azure-core (about 60 ms, STYLE.md): modules on the explorer's start-up path
import it where a sync or a push begins, not at the top.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from finops_tui.config import CREDENTIAL_MODES
from finops_tui.errors import AzureError, UserError

PUBLIC_ARM_ENDPOINT = "https://management.azure.com"
NOT_SIGNED_IN = "not signed in to Azure: run `az login` (or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET)"
# ARM host → Entra ID host of the sovereign clouds (tokens for them come from their own authority).
SOVEREIGN_AUTHORITIES = {
    "management.chinacloudapi.cn": "login.chinacloudapi.cn",
    "management.usgovcloudapi.net": "login.microsoftonline.us",
}

# azure-identity logs every failed credential of a chain at WARNING. With no handler configured anywhere,
# Python's last-resort handler would print those multi-line reports to stderr (over the TUI, or next to our
# one clear line); a NullHandler keeps them for apps that do configure logging and silent otherwise.
logging.getLogger("azure").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Endpoint:
    """An ARM endpoint the sync or the push may talk to; plain http only ever for loopback addresses."""

    url: str
    allow_http: bool

    @property
    def credential_scope(self) -> str:
        return f"{self.url}/.default"


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def parse_endpoint(url: str | None) -> Endpoint:
    """Validate `--arm-endpoint` / `sync.arm_endpoint`: https anywhere, http only on loopback."""
    if not url:
        return Endpoint(PUBLIC_ARM_ENDPOINT, allow_http=False)
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise UserError(f"--arm-endpoint {url}: expected an https:// URL such as {PUBLIC_ARM_ENDPOINT}")
    if parts.query or parts.fragment:
        raise UserError(f"--arm-endpoint {url}: the endpoint takes no query string or fragment")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise UserError(
            f"--arm-endpoint {url}: plain http is accepted only for loopback addresses "
            "(127.0.0.0/8, ::1, localhost); use https"
        )
    return Endpoint(f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", allow_http=parts.scheme == "http")


def check_url_allowed(url: str) -> None:
    """Refuse downloads (Cost Details blob links) over plain http anywhere but loopback."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname or ""):
        return
    raise AzureError(f"refusing to download {parts.scheme}://{parts.hostname}/…: only https links are accepted")


def sign_in_authority(endpoint: Endpoint) -> str | None:
    """The Entra ID host for a sovereign cloud's ARM endpoint (None: the public cloud, or AZURE_AUTHORITY_HOST)."""
    if os.environ.get("AZURE_AUTHORITY_HOST"):
        return None  # azure-identity reads it itself
    host = (urlsplit(endpoint.url).hostname or "").lower()
    return SOVEREIGN_AUTHORITIES.get(host)


def make_credential(
    mode: str = "auto",
    *,
    endpoint: Endpoint | None = None,
    device_code_prompt: Callable[[str, str, Any], None] | None = None,
) -> TokenCredential:
    """The credential for `mode`; "auto" is service-principal env vars, then the az CLI login.

    No managed-identity probe unless asked for: on a laptop it stalls for seconds on 169.254.169.254.
    The az CLI signs in to whichever cloud `az cloud set` chose; the others get the sovereign authority.
    """
    # azure-identity costs about 90 ms more than azure-core: loaded when a credential is made.
    from azure.identity import (
        AzureCliCredential,
        ChainedTokenCredential,
        DeviceCodeCredential,
        EnvironmentCredential,
        ManagedIdentityCredential,
    )

    authority = sign_in_authority(endpoint) if endpoint else None
    extra: dict[str, Any] = {"authority": authority} if authority else {}
    if mode == "auto":
        return ChainedTokenCredential(EnvironmentCredential(**extra), AzureCliCredential(process_timeout=20))
    if mode == "cli":
        return AzureCliCredential(process_timeout=20)
    if mode == "device-code":
        if device_code_prompt:
            extra["prompt_callback"] = device_code_prompt
        return DeviceCodeCredential(**extra)
    if mode == "managed-identity":
        return ManagedIdentityCredential()
    raise UserError(f"sync.credential = {mode!r}: expected one of {', '.join(CREDENTIAL_MODES)}")


def check_signed_in(credential: TokenCredential, endpoint: Endpoint, mode: str = "auto") -> None:
    """Fetch one token up front so a missing login fails fast with one clear line (the token is not kept)."""
    try:
        credential.get_token(endpoint.credential_scope)
    except ClientAuthenticationError as exc:
        if mode == "managed-identity":
            reason = " ".join(str(exc.message or exc).split())[:200]
            raise AzureError(f'no managed identity here (sync.credential = "managed-identity"): {reason}') from None
        if mode == "device-code":
            raise AzureError("device code sign-in did not complete: run the sync again and enter the code") from None
        raise AzureError(NOT_SIGNED_IN) from None
    except ValueError as exc:  # an invalid scope string, e.g. a malformed endpoint
        raise AzureError(f"cannot request a token for {endpoint.credential_scope}: {exc}") from None


class AllowHttpPolicy(SansIOHTTPPolicy):
    """Lets the bearer policy send to a loopback http endpoint (a local fake or proxy); added only then."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context["enforce_https"] = False
