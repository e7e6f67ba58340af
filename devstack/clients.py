"""boto3 clients for a running dev stack's emulated AWS, from its outputs.json (tools and tests)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import boto3


def emulated_client(service: str, outputs: Mapping[str, Any]) -> Any:
    # moto accepts any credentials; fixed ones keep a developer's real AWS profile out of the picture.
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=outputs["aws_endpoint_url"],
        region_name=outputs["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def presigned_post_body(
    fields: Mapping[str, str], data: bytes, content_type: str, *, filename: str = "upload"
) -> tuple[bytes, str]:
    """(body, Content-Type header) of the form a browser POSTs to a presigned URL: the policy fields, then the file."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
