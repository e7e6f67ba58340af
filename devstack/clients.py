"""boto3 clients for a running dev stack's emulated AWS, from its outputs.json (tools and tests)."""

from __future__ import annotations

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
