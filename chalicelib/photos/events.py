"""Reading S3 event notifications as they arrive through SQS."""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote_plus

log = logging.getLogger(__name__)


def uploaded_object_keys(message_body: str, *, bucket: str) -> list[str]:
    """The keys of objects created in `bucket`, decoded, from one SQS message body.

    S3's `s3:TestEvent` (sent when a notification is configured) and anything that is not an S3 ObjectCreated
    record yield nothing: such a message can never succeed, so retrying it would only feed the dead-letter queue.
    """
    try:
        notification = json.loads(message_body)
    except ValueError:
        log.warning("dropping an SQS message that is not JSON")
        return []
    if not isinstance(notification, dict) or notification.get("Event") == "s3:TestEvent":
        return []
    found = []
    for record in notification.get("Records") or []:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        if (s3.get("bucket") or {}).get("name") != bucket:
            log.warning("ignoring an event for bucket %r", (s3.get("bucket") or {}).get("name"))
            continue
        raw_key = (s3.get("object") or {}).get("key")
        if isinstance(raw_key, str) and raw_key:
            # S3 URL-encodes keys in notifications (spaces as '+').
            found.append(unquote_plus(raw_key))
    return found
