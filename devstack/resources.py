"""The AWS resources PhotoSky needs, created against an emulated AWS (moto) for the dev stack and tests.

The table layout here is the one `chalicelib.keys` writes to: generic `PK`/`SK` keys and two generic, overloaded
indexes (`GSI1`, `GSI2`), so most new access patterns need no table migration. infra/resources.yaml declares the
same table for AWS (a test keeps the two equal).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from chalicelib.keys import UPLOADS_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "PK", "AttributeType": "S"},
        {"AttributeName": "SK", "AttributeType": "S"},
        {"AttributeName": "GSI1PK", "AttributeType": "S"},
        {"AttributeName": "GSI1SK", "AttributeType": "S"},
        {"AttributeName": "GSI2PK", "AttributeType": "S"},
        {"AttributeName": "GSI2SK", "AttributeType": "S"},
    ],
    "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "GSI1",
            "KeySchema": [
                {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
        {
            "IndexName": "GSI2",
            "KeySchema": [
                {"AttributeName": "GSI2PK", "KeyType": "HASH"},
                {"AttributeName": "GSI2SK", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        },
    ],
    "BillingMode": "PAY_PER_REQUEST",
}

# What the SPA's app client allows: no secret (a browser cannot keep one), password and SRP sign-in, refresh.
SPA_CLIENT_AUTH_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]

# A local SPA may be served from any port on this machine.
LOCAL_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*"]

PASSWORD_POLICY = {
    "MinimumLength": 10,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": False,
}


@dataclass(frozen=True)
class Names:
    table: str
    bucket: str
    uploads_queue: str
    uploads_dlq: str
    user_pool: str
    spa_client: str

    @classmethod
    def for_stage(cls, stage: str, table: str, bucket: str) -> Names:
        return cls(
            table=table,
            bucket=bucket,
            uploads_queue=f"photosky-{stage}-uploads",
            uploads_dlq=f"photosky-{stage}-uploads-dlq",
            user_pool=f"photosky-{stage}-users",
            spa_client=f"photosky-{stage}-spa",
        )


@dataclass(frozen=True)
class Provisioned:
    table_name: str
    bucket_name: str
    uploads_queue_url: str
    uploads_dlq_url: str
    user_pool_id: str
    user_pool_arn: str
    user_pool_client_id: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# The attribute DynamoDB TTL reads: only items whose removal changes nothing else carry it (rate-limit windows).
# Photos never do: TTL would drop a PENDING photo without releasing the quota it reserved.
TTL_ATTRIBUTE = "expires_at_epoch"


def create_table(dynamodb: DynamoDBClient, name: str) -> None:
    dynamodb.create_table(TableName=name, **TABLE_DEFINITION)
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


def create_bucket(s3: S3Client, name: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    # Uploads are moved to originals/ or deleted within seconds; anything left under uploads/ is debris.
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-abandoned-uploads",
                    "Status": "Enabled",
                    "Filter": {"Prefix": UPLOADS_PREFIX},
                    "Expiration": {"Days": 2},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
            ]
        },
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def create_queues(sqs: SQSClient, queue: str, dlq: str, *, max_receive_count: int = 5) -> tuple[str, str]:
    dlq_url = sqs.create_queue(QueueName=dlq, Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=queue,
        Attributes={
            # AWS's advice for a queue feeding Lambda: six times the function's timeout (60 s for the worker).
            "VisibilityTimeout": "360",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receive_count}"}}',
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def create_user_pool(cognito: CognitoIdentityProviderClient, pool_name: str, client_name: str) -> tuple[str, str, str]:
    """A user pool signing in by username with email, and the SPA's public app client. Returns id, ARN, client id."""
    pool = cognito.create_user_pool(
        PoolName=pool_name,
        Policies=cast(Any, {"PasswordPolicy": PASSWORD_POLICY}),
        AutoVerifiedAttributes=["email"],
        Schema=[{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
    )["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName=client_name,
        GenerateSecret=False,
        ExplicitAuthFlows=SPA_CLIENT_AUTH_FLOWS,  # type: ignore[arg-type]
        PreventUserExistenceErrors="ENABLED",
        ReadAttributes=["email", "email_verified"],
        IdTokenValidity=60,
        AccessTokenValidity=60,
        RefreshTokenValidity=30,
        TokenValidityUnits={"IdToken": "minutes", "AccessToken": "minutes", "RefreshToken": "days"},
    )["UserPoolClient"]
    return pool["Id"], pool["Arn"], client["ClientId"]


def create_confirmed_user(
    cognito: CognitoIdentityProviderClient, user_pool_id: str, username: str, password: str, email: str
) -> None:
    """A user who can sign in at once with USER_PASSWORD_AUTH (no temporary password, email verified)."""
    cognito.admin_create_user(
        UserPoolId=user_pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
    )
    cognito.admin_set_user_password(UserPoolId=user_pool_id, Username=username, Password=password, Permanent=True)


def notify_queue_of_uploads(s3: S3Client, sqs: SQSClient, bucket: str, queue_url: str, prefix: str) -> None:
    """S3 ObjectCreated under `prefix` -> the uploads queue, as the infrastructure template wires it in AWS."""
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                }
            ]
        },
    )


def allow_browser_access(s3: S3Client, bucket: str, origins: list[str]) -> None:
    """CORS for the SPA's direct uploads (presigned POST) and downloads (presigned GET)."""
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": origins,
                    "AllowedMethods": ["GET", "HEAD", "POST"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 3600,
                }
            ]
        },
    )


def provision(
    *,
    names: Names,
    region: str,
    dynamodb: DynamoDBClient,
    s3: S3Client,
    sqs: SQSClient,
    cognito: CognitoIdentityProviderClient,
) -> Provisioned:
    create_table(dynamodb, names.table)
    create_bucket(s3, names.bucket, region)
    queue_url, dlq_url = create_queues(sqs, names.uploads_queue, names.uploads_dlq)
    notify_queue_of_uploads(s3, sqs, names.bucket, queue_url, UPLOADS_PREFIX)
    allow_browser_access(s3, names.bucket, LOCAL_ORIGINS)
    pool_id, pool_arn, client_id = create_user_pool(cognito, names.user_pool, names.spa_client)
    return Provisioned(
        table_name=names.table,
        bucket_name=names.bucket,
        uploads_queue_url=queue_url,
        uploads_dlq_url=dlq_url,
        user_pool_id=pool_id,
        user_pool_arn=pool_arn,
        user_pool_client_id=client_id,
    )
