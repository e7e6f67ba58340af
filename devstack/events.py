"""Run the app's event handlers locally the way Lambda would (neither runs under `chalice local`).

- SQS: long-polls each queue the app subscribes to with `@app.on_sqs_message`, invokes that very handler with a
  Lambda SQS event, deletes the message on success and, on failure, makes it visible again after a short delay,
  so SQS's redrive policy moves a poison message to the dead-letter queue as in AWS.
- Schedules: invokes every `@app.schedule` handler at a fixed local interval (their AWS rates are too slow for a
  dev loop).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice, ScheduledEventConfig, SQSEventConfig
from chalice.local import LambdaContext

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], LambdaContext], Any]
RETRY_DELAY_SECONDS = 2


def _handler(handler_string: str) -> Handler:
    module_name, attribute = handler_string.rsplit(".", 1)
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def _context(name: str) -> LambdaContext:
    return LambdaContext(function_name=f"photosky-local-{name}", memory_size=1024, max_runtime_ms=120_000)


def sqs_lambda_event(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    body = message.get("Body", "")
    return {
        "Records": [
            {
                "messageId": message.get("MessageId", str(uuid.uuid4())),
                "receiptHandle": message.get("ReceiptHandle", ""),
                "body": body,
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        ]
    }


def scheduled_lambda_event(region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [],
        "detail": {},
    }


class EventPump:
    def __init__(
        self,
        app_object: Chalice,
        sqs: SQSClient,
        *,
        region: str,
        schedule_interval_seconds: float = 60.0,
        retry_delay_seconds: int = RETRY_DELAY_SECONDS,
    ) -> None:
        self._app = app_object
        self._sqs = sqs
        self._region = region
        self._schedule_interval = schedule_interval_seconds
        self._retry_delay = retry_delay_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for source in self._app.event_sources:
            target: Callable[[], None]
            if isinstance(source, SQSEventConfig) and source.queue:
                target = functools.partial(self._poll_queue, source, source.queue)
            elif isinstance(source, ScheduledEventConfig):
                target = functools.partial(self._run_schedule, source)
            else:
                continue
            thread = threading.Thread(target=target, name=f"events-{source.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _poll_queue(self, source: SQSEventConfig, queue: str) -> None:
        handler = _handler(source.handler_string)
        queue_url = self._sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        while not self._stop.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=min(source.batch_size, 10),
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("polling %s failed; retrying", queue)
                self._stop.wait(1)
                continue
            for message in messages:
                self._deliver(handler, source, message, queue_url, queue_arn)

    def _deliver(
        self, handler: Handler, source: SQSEventConfig, message: MessageTypeDef, queue_url: str, queue_arn: str
    ) -> None:
        try:
            handler(sqs_lambda_event(message, queue_arn, self._region), _context(source.name))
        except Exception:
            log.exception("%s failed on message %s; it will be redelivered", source.name, message.get("MessageId"))
            self._sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=self._retry_delay
            )
            return
        self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _run_schedule(self, source: ScheduledEventConfig) -> None:
        handler = _handler(source.handler_string)
        while not self._stop.wait(self._schedule_interval):
            try:
                handler(scheduled_lambda_event(self._region), _context(source.name))
            except Exception:
                log.exception("scheduled %s failed", source.name)
