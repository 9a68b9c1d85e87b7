"""Sending: step 2 of the delivery protocol, outside any transaction, on one asyncio event loop in a thread of its
own. The loop only talks to receivers; the pass's thread does all the database work."""
import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import httpx
from django.utils import timezone

from notifications.engine.claims import delivery_bound
from notifications.models import NotificationEvent
from notifications.notifiers import DeliveryResult, Notifier, configured_secrets
from notifications.notifiers.http import new_http_client
from notifications.redaction import redact

log = logging.getLogger("notifications.delivery")


@dataclass(frozen=True)
class Delivery:
    """One finished attempt, waiting to be recorded."""

    event: NotificationEvent
    result: DeliveryResult
    started_at: datetime
    duration_ms: int
    finished_at: datetime


async def send_event(event: NotificationEvent, notifier: Notifier, client: httpx.AsyncClient) -> DeliveryResult:
    """One delivery attempt over the event's channel; never raises."""
    try:
        if notifier.blocking:
            result = await notifier.send(event, client)  # a thread cannot be cut short; its own timeouts bound it
        else:
            async with asyncio.timeout(delivery_bound()):
                result = await notifier.send(event, client)
    except TimeoutError:
        result = DeliveryResult.transient(
            f"{event.channel}: no complete answer within {delivery_bound():g}s "
            "(CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + CERTCTL_NOTIFICATION_READ_TIMEOUT); will retry"
        )
    except Exception as exc:  # a notifier bug must cost one attempt, not the whole pass
        log.exception("notifier raised", extra={"event_id": event.id, "channel": event.channel})
        result = DeliveryResult.transient(
            f"internal error in the {event.channel} notifier: {type(exc).__name__}: {exc}"
        )
    # Errors are logged and shown in the UI and the API; a receiver or an exception may quote any configured secret.
    return replace(result, error=redact(result.error, configured_secrets())) if result.error else result


class Sender:
    """An asyncio event loop on a thread of its own, performing sends; finished ones arrive on `finished`.

    Each send to an HTTP destination borrows a client with one keep-alive connection to it, kept for the
    pass; blocking notifiers (SMTP) run on the loop's executor, sized like the per-destination cap.
    """

    def __init__(self, blocking_workers: int, now: datetime | None):
        self.now = now
        self.finished: queue.SimpleQueue[tuple[str, Delivery]] = queue.SimpleQueue()
        self.idle_clients: dict[str, list[httpx.AsyncClient]] = {}
        self.loop = asyncio.new_event_loop()
        self.executor = ThreadPoolExecutor(max_workers=blocking_workers, thread_name_prefix="deliver-blocking")
        self.loop.set_default_executor(self.executor)
        self.thread = threading.Thread(target=self.loop.run_forever, name="deliver-loop", daemon=True)
        self.thread.start()

    def start(self, sends: Sequence[tuple[str, NotificationEvent, Notifier]]) -> None:
        """Start sends of (destination, event, notifier), waking the loop's thread once for the lot, not once a send."""
        asyncio.run_coroutine_threadsafe(self._send_all(sends), self.loop)

    async def _send_all(self, sends: Sequence[tuple[str, NotificationEvent, Notifier]]) -> None:
        await asyncio.gather(*(self._send(destination, event, notifier) for destination, event, notifier in sends))

    async def _send(self, destination: str, event: NotificationEvent, notifier: Notifier) -> None:
        idle = self.idle_clients.setdefault(destination, [])
        client = idle.pop() if idle else new_http_client()
        started_at = self.now or timezone.now()
        started = time.monotonic()
        try:
            result = await send_event(event, notifier, client)
        except BaseException as exc:  # cancelled at shutdown: the caller still waits for an answer
            result = DeliveryResult.transient(f"delivery interrupted ({type(exc).__name__}); will retry")
        idle.append(client)
        duration_ms = int((time.monotonic() - started) * 1000)
        self.finished.put((destination, Delivery(event, result, started_at, duration_ms, self.now or timezone.now())))

    async def _close_clients(self) -> None:
        for clients in self.idle_clients.values():
            for client in clients:
                await client.aclose()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close_clients(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
        self.executor.shutdown(wait=True)
