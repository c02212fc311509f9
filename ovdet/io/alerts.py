"""Alerts out: a JSON line per alert (``--alerts``), and a POST per alert to a webhook (``--webhook``).

The file is the record: every alert lands there first, whole. The webhook is best effort and never holds up the
pipeline: alerts wait in a bounded queue for a background thread that retries with backoff; an alert that finds
the queue full, or that fails every try, is logged (it is still in the file).

A redirect is not followed (urllib would turn the POST into a body-less GET to wherever it points): it is a
failed delivery. At most :data:`MAX_RESPONSE_BYTES` of a response are read. The URL is printed with its
user-info and query values masked (:func:`masked_url`); user-info is sent as HTTP basic authentication.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import supervision as sv

from ..core.errors import UsageError
from ..core.files import AppendFile
from .sources import Frame

__all__ = ["MAX_RESPONSE_BYTES", "AlertsSink", "WebhookSender", "check_webhook_url", "masked_url"]

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 << 10  # a webhook answers "ok"; the rest of a longer answer is never read
_END = object()


def check_webhook_url(url: str) -> str:
    """Refuse a webhook that is not an http(s) URL with a host (and a port, if any, from 1 to 65535).

    Example:
        >>> check_webhook_url("http://127.0.0.1:8080/alerts")
        'http://127.0.0.1:8080/alerts'
    """
    fix = "expected an http:// or https:// URL with a host, e.g. http://host/alerts"
    if not url.isprintable() or any(character.isspace() for character in url):
        raise UsageError(f"--webhook: the URL holds a blank or a control character; {fix}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed [IPv6 address, a port that is no number or out of range
        raise UsageError(f"--webhook {masked_url(url)}: {exc}; {fix}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == 0:
        raise UsageError(f"--webhook {masked_url(url)}: {fix}")
    return url


def masked_url(url: str) -> str:
    """``url`` as ovdet prints it: user-info, every query value and the fragment replaced by ``***``.

    Example:
        >>> masked_url("https://bot:s3cret@hooks.example/ward?token=abc&room=3")
        'https://***@hooks.example/ward?token=***&room=***'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an invalid URL)"
    _, at, host = parts.netloc.rpartition("@")
    query = "&".join(f"{field.partition('=')[0]}=***" if "=" in field else "***" for field in parts.query.split("&"))
    return urlunsplit(
        (parts.scheme, "***@" + host if at else host, parts.path, query if parts.query else "",
         "***" if parts.fragment else "")
    )  # fmt: skip


def _without_user_info(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its user-info, and the basic-authentication header that carries it instead."""
    parts = urlsplit(url)
    user_info, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, {}
    user, _, password = user_info.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx answer is an error (``HTTPError``), not a new request to somewhere else."""

    def redirect_request(self, *args, **kwargs) -> None:
        return None


class WebhookSender:
    """POSTs JSON documents to ``url`` from a daemon thread; :meth:`send` never waits.

    Args:
        url: The webhook.
        queue_size: Alerts waiting at most; one more is dropped (and logged) rather than waited for.
        retries: Tries after the first one fails; the waits between them double from ``backoff`` seconds.
        timeout: Seconds one request may take.
        drain_seconds: How long :meth:`close` gives the alerts still queued, one try each.

    Attributes:
        delivered, failed, dropped: Alerts delivered, given up after every try, and refused by a full queue.
            The first failure and the first drop are logged as warnings, the totals once more at :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 256,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
        drain_seconds: float = 2.0,
    ) -> None:
        self.url = check_webhook_url(url)
        self.shown = masked_url(url)
        self._target, self._headers = _without_user_info(url)
        self._opener = urllib.request.build_opener(_NoRedirects)
        self.retries, self.backoff, self.timeout, self.drain_seconds = retries, backoff, timeout, drain_seconds
        self.delivered = self.failed = self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ovdet-webhook", daemon=True)
        self._thread.start()

    def send(self, document: dict[str, Any]) -> None:
        """Queue ``document`` for delivery, or drop it at once if the queue is full."""
        try:
            self._queue.put_nowait(document)
        except queue.Full:
            self.dropped += 1
            _first_warning(
                self.dropped, "webhook %s is not keeping up: alert %r dropped (%d queued); it is in the alerts file",
                self.shown, document.get("rule"), self._queue.qsize(),
            )  # fmt: skip

    def _run(self) -> None:
        while (document := self._queue.get()) is not _END:
            error = self._deliver(document)
            if error is None:
                self.delivered += 1
            else:
                self.failed += 1
                _first_warning(
                    self.failed, "webhook %s: alert %r not delivered (%s)", self.shown, document.get("rule"), error
                )

    def _deliver(self, document: dict[str, Any]) -> str | None:
        """Post with retries; the reason of the last failure, or ``None`` once delivered."""
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", **self._headers}
        request = urllib.request.Request(self._target, data=body, method="POST", headers=headers)
        reason = "not tried"
        for attempt in range(self.retries + 1):
            if attempt and self._closing.wait(self.backoff * 2 ** (attempt - 1)):
                break  # closing: no more backoff, the next alerts get their one try
            try:
                with self._opener.open(request, timeout=self.timeout) as response:
                    response.read(MAX_RESPONSE_BYTES)
                return None
            except urllib.error.HTTPError as exc:
                exc.close()
                if 300 <= exc.code < 400:  # the same answer every time: no retry
                    return f"HTTP {exc.code}, a redirect, not followed: give the URL it points to"
                reason = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                reason = str(getattr(exc, "reason", exc))
            except (http.client.HTTPException, ValueError) as exc:  # not an HTTP answer
                reason = f"not an HTTP response ({type(exc).__name__})"
        return reason

    def close(self) -> None:
        """Give the queued alerts up to ``drain_seconds``, then stop; what is left undelivered is logged."""
        self._closing.set()
        deadline = time.monotonic() + self.drain_seconds
        with contextlib.suppress(queue.Full):  # a busy thread with a full queue: the join gives up at the deadline
            self._queue.put(_END, timeout=self.drain_seconds)
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        left = self._queue.qsize() if self._thread.is_alive() else 0
        if self.failed + self.dropped + left > 1:
            log.warning(
                "webhook %s: %d alert(s) not delivered, %d dropped while it was not keeping up, %d still queued "
                "after waiting %.0f s; every alert is in the alerts file",
                self.shown, self.failed, self.dropped, left, self.drain_seconds,
            )  # fmt: skip


def _first_warning(count: int, message: str, *args: object) -> None:
    """The first failure of a kind is a warning; the rest are counted in the one line :meth:`close` logs."""
    log.log(logging.WARNING if count == 1 else logging.INFO, message, *args)


class AlertsSink:
    """Writes the alerts each frame carries (``detections.metadata["alerts"]``): their crops, then their lines.

    Args:
        path: ``--alerts`` JSONL file, or ``None``.
        webhook: Where each alert is also POSTed, or ``None``.
        crops: A :class:`~ovdet.io.crops.CropWriter` that saves each alert's crop, or ``None``.
    """

    def __init__(self, path: str | os.PathLike[str] | None, webhook: WebhookSender | None = None, crops=None) -> None:
        self._file = AppendFile(path) if path is not None else None
        self.path = self._file.path if self._file is not None else None
        self.webhook = webhook
        self.crops = crops
        self.count = 0

    def write(self, frame: Frame, detections: sv.Detections) -> None:
        for alert in detections.metadata.get("alerts", ()):
            self.count += 1
            if self.crops is not None:
                alert.crop = self.crops.save_alert(frame, alert, self.count)
            record = alert.record()
            if self._file is not None:
                self._file.append(json.dumps(record, ensure_ascii=False) + "\n")
            if self.webhook is not None:
                self.webhook.send(record)

    def close(self) -> None:
        try:
            if self.webhook is not None:
                self.webhook.close()
        finally:
            if self._file is not None:
                self._file.close()
