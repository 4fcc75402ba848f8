"""The webhook target: each notification is one HTTP(S) POST of its JSON document, signed with
HMAC-SHA256, and counts as delivered when the receiver answers with a 2xx status.

Redirects are not followed (a 3xx is a failure): the body and its signature go only where the
operator configured them.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from plantwarden import __version__
from plantwarden.workers.notify.document import Notification
from plantwarden.workers.notify.target import DeliveryFailed
from plantwarden.workers.notify.tls import client_context

SIGNATURE_HEADER = "X-Plantwarden-Signature"
ANSWER_LIMIT = 300  # characters of the receiver's answer quoted in a failure


def signature(secret: bytes, body: bytes) -> str:
    """The value of the signature header: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookTarget:
    """POSTs notifications one at a time, each acknowledged by a 2xx answer."""

    name = "webhook"
    batch_size = 1

    def __init__(self, url: str, secret: bytes, *, timeout: float, ca_file: Path | None = None) -> None:
        parts = urlsplit(url)
        self._url = url
        self._shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/..."
        """What logs and errors name: hooks often carry their secret in the path or query."""
        self._secure = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._secret = secret
        self._timeout = timeout
        self._context = client_context(ca_file) if self._secure else None

    def deliver(self, notifications: Sequence[Notification]) -> None:
        """POST each notification in order; raises `DeliveryFailed` at the first one refused."""
        for notification in notifications:
            self._post(notification)

    def close(self) -> None:
        """Nothing to release: every POST uses a connection of its own."""

    def _connection(self) -> http.client.HTTPConnection:
        if self._context is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _headers(self, notification: Notification, body: bytes) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"plantwarden/{__version__}",
            SIGNATURE_HEADER: signature(self._secret, body),
            "X-Plantwarden-Event-Id": str(notification.event.id),
            "X-Plantwarden-Event-Type": notification.event.type,
        }

    def _post(self, notification: Notification) -> None:
        body = notification.body()
        connection = self._connection()
        try:
            connection.request("POST", self._path, body, self._headers(notification, body))
            response = connection.getresponse()
            answer = response.read(4096).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as error:
            raise DeliveryFailed(f"webhook {self._shown}: {error or type(error).__name__}") from error
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise DeliveryFailed(
                f"webhook {self._shown} answered {response.status} {response.reason}: "
                f"{answer[:ANSWER_LIMIT].strip()!r}"
            )
