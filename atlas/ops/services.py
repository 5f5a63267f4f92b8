"""Operations services: heartbeats, the broker's reachability and queue depths."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from kombu import Connection

from atlas.ops.models import WorkerHeartbeat


def heartbeat_record(*, queue: str, hostname: str) -> WorkerHeartbeat:
    beat, _ = WorkerHeartbeat.objects.update_or_create(
        queue=queue[:64], hostname=hostname[:255], defaults={"seen_at": timezone.now()}
    )
    return beat


def heartbeats_latest() -> dict[str, datetime]:
    """The newest heartbeat per queue (any worker)."""
    latest: dict[str, datetime] = {}
    for queue, seen in WorkerHeartbeat.objects.values_list("queue", "seen_at"):
        if queue not in latest or seen > latest[queue]:
            latest[queue] = seen
    return latest


def _connection(timeout: float) -> Connection:
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    # Fail fast: a health probe or a page must not hang on a dead broker.
    options.update(socket_timeout=timeout, socket_connect_timeout=timeout, max_retries=0)
    return Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options)


def broker_problem(*, timeout: float | None = None) -> str:
    """Why the task queue cannot be reached now, or "" when it can."""
    timeout = timeout or settings.HEALTH_BROKER_TIMEOUT
    try:
        with _connection(timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            conn.default_channel  # noqa: B018 - opening a channel proves the broker answers
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"; the reason is reported
        return f"the task queue ({_redacted(settings.CELERY_BROKER_URL)}) cannot be reached: {type(exc).__name__}: {exc}"
    return ""


def enqueue_problem() -> str:
    """Why a task could not be enqueued now ("" when it can; eager mode needs no broker)."""
    return "" if settings.CELERY_TASK_ALWAYS_EAGER else broker_problem()


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    messages: int | None  # None: could not be read


def queue_depths(*, queues: list[str] | None = None, timeout: float | None = None) -> list[QueueDepth]:
    """Messages waiting per queue (kombu's passive queue_declare works on Redis, AMQP and files)."""
    queues = queues or settings.HEALTH_QUEUES
    timeout = timeout or settings.HEALTH_BROKER_TIMEOUT
    depths = []
    try:
        with _connection(timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            channel = conn.default_channel
            for queue in queues:
                try:
                    _, messages, _ = channel.queue_declare(queue=queue, passive=True)
                except Exception:  # noqa: BLE001 - a queue never declared (AMQP) holds nothing
                    messages = 0
                depths.append(QueueDepth(queue, int(messages)))
    except Exception:  # noqa: BLE001
        return [QueueDepth(queue, None) for queue in queues]
    return depths


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return scheme + sep + rest
