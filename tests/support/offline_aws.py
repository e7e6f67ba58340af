"""The environment in-process moto runs under: no credentials, profile or endpoint of a real account is ever read."""

from __future__ import annotations

import os

from tests.support.cognito import REGION

# Removed first: any of these could point a client at a real account.
REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


def offline_aws_environment(pool_arn: str) -> dict[str, str]:
    """Throwaway credentials, no shared files, no instance metadata, and the (fake) user pool the app's authorizer
    names at import."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "COGNITO_USER_POOL_ARN": pool_arn,
    }
