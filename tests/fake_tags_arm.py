"""A fake ARM Tags API on 127.0.0.1 for push tests: records requests, scripts failures, merges tags."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.core.credentials import AccessToken

TAGS_SUFFIX = "/providers/microsoft.resources/tags/default"


class FakeCredential:
    """Satisfies azure.core.credentials.TokenCredential without any network or cache."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)

    def close(self) -> None:
        pass


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeTagsArm:
    """Serves PATCH {resourceId}/providers/Microsoft.Resources/tags/default like ARM does.

    `responses[resource_id_lower]` is a list of scripted (status, headers, body) answers consumed in
    order before the normal 200; `missing` ids answer 404 and `forbidden` ids 403 every time.
    """

    responses: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # resource id (lower) -> tags now
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeTagsArm:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_PATCH(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                fake.requests.append(Recorded("PATCH", parts.path, parse_qs(parts.query), dict(self.headers), body))
                if not self.headers.get("Authorization", "").startswith("Bearer "):
                    self._reply(401, {"error": {"code": "AuthenticationFailed", "message": "no bearer token"}})
                    return
                if "api-version" not in parse_qs(parts.query):
                    self._reply(400, {"error": {"code": "MissingApiVersionParameter", "message": "api-version"}})
                    return
                path = parts.path
                if not path.lower().endswith(TAGS_SUFFIX):
                    self._reply(404, {"error": {"code": "NotFound", "message": path}})
                    return
                resource = path[: -len(TAGS_SUFFIX)].lower()
                script = fake.responses.get(resource)
                if script:
                    status, headers, reply = script.pop(0)
                    self._reply(status, reply, headers)
                    return
                if resource in fake.missing:
                    self._reply(404, {"error": {"code": "ResourceNotFound",
                                                "message": f"The Resource '{resource}' was not found."}})
                    return
                if resource in fake.forbidden:
                    self._reply(403, {"error": {"code": "AuthorizationFailed",
                                                "message": "does not have authorization to perform action "
                                                           "'Microsoft.Resources/tags/write'"}})
                    return
                if not isinstance(body, dict) or body.get("operation") != "Merge":
                    self._reply(400, {"error": {"code": "InvalidRequestContent", "message": "expected a Merge"}})
                    return
                merged = fake.tags.setdefault(resource, {})
                merged.update(body["properties"]["tags"])
                self._reply(200, {"id": f"{path}", "name": "default", "type": "Microsoft.Resources/tags",
                                  "properties": {"tags": merged}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


