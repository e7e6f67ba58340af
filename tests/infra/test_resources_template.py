"""infra/resources.yaml: the AWS resources Chalice does not create, checked offline.

cfn-lint validates the template against CloudFormation's resource schemas; the other tests pin what cfn-lint cannot
know: that the template matches the dev stack (`devstack.resources`), the app's key layout (`chalicelib.keys`) and
Chalice's config, and that its security choices (private buckets, least-privilege resource policies, prod-only
retention) stay in place.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode_str

from chalicelib import keys
from chalicelib.keys import GSI1, GSI2, UPLOADS_PREFIX
from devstack.resources import PASSWORD_POLICY, SPA_CLIENT_AUTH_FLOWS, TABLE_DEFINITION, TTL_ATTRIBUTE
from devstack.web import SECURITY_HEADERS, content_security_policy

PROJECT_DIR = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_DIR / "infra" / "resources.yaml"
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
REGION = "us-east-1"

EXPORTED_OUTPUTS = [
    "TableName",
    "TableArn",
    "BucketName",
    "BucketArn",
    "UploadsQueueName",
    "UploadsQueueArn",
    "UploadsDeadLetterQueueArn",
    "UserPoolId",
    "UserPoolArn",
    "UserPoolClientId",
    "CursorSecretArn",
    "SpaBucketName",
    "SpaDistributionId",
    "SpaUrl",
    "Region",
    "MediaUrl",
    "MediaSigningKeySecretArn",
]
# Logical ids `chalice package` generates; the template is merged into its output, so none may be reused.
CHALICE_LOGICAL_IDS = {
    "APIHandler",
    "RestAPI",
    "ProcessUploads",
    "ReleaseAbandonedUploads",
    "DefaultRole",
    "WebsocketAPI",
    "WebsocketAPIDeployment",
    "WebsocketAPIStage",
    "WebsocketConnect",
    "WebsocketDisconnect",
    "WebsocketMessage",
}
CHALICE_LOGICAL_ID_SUFFIXES = ("Role", "InvokePermission", "SqsEventSource", "APIIntegration", "Route")


# --- helpers ------------------------------------------------------------------------------------------------------


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain dicts/lists, short-form tags expanded (`!Ref X` -> {"Ref": "X"}) by cfn-lint's loader."""
    template, errors = decode_str(path.read_text())
    assert not errors, [str(e) for e in errors]
    assert template is not None
    # cfn-lint's nodes subclass dict/str and carry line marks; a JSON round trip leaves plain values.
    plain: dict[str, Any] = json.loads(json.dumps(template))
    return plain


def run_cfn_lint(path: Path) -> list[str]:
    """cfn-lint's errors and warnings (its default checks) for `path`, one readable line each."""
    matches = lint_file(path, config=ManualArgs(regions=[REGION]))
    return [f"{m.rule.id} {m.message} ({Path(m.filename or path).name}:{m.linenumber})" for m in matches]


def sub(value: Any, **names: str) -> str:
    """Resolve a `!Sub` string whose variables are all given in `names` (e.g. Stage="dev")."""
    assert isinstance(value, dict), value
    assert list(value) == ["Fn::Sub"], value
    text = value["Fn::Sub"]
    assert isinstance(text, str), value
    return re.sub(r"\$\{([^}!]+)\}", lambda m: names[m.group(1)], text)


def strings_in(value: Any) -> list[str]:
    """Every string inside a (possibly intrinsic) value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def policy_documents(node: Any) -> list[dict[str, Any]]:
    """Every PolicyDocument anywhere under `node` (queue policies, bucket policies, inline role policies...)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "PolicyDocument" and isinstance(value, dict):
                found.append(value)
            else:
                found.extend(policy_documents(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(policy_documents(item))
    return found


def depends_on(resource: dict[str, Any]) -> list[str]:
    value = resource.get("DependsOn", [])
    return [value] if isinstance(value, str) else list(value)


def chalice_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(CHALICE_CONFIG.read_text())
    return config


# --- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = template["Resources"]
    return result


@pytest.fixture(scope="module")
def lint_findings() -> list[str]:
    return run_cfn_lint(TEMPLATE_PATH)


def props(resources: dict[str, dict[str, Any]], logical_id: str) -> dict[str, Any]:
    result: dict[str, Any] = resources[logical_id]["Properties"]
    return result


# --- cfn-lint -----------------------------------------------------------------------------------------------------


def test_cfn_lint_reports_no_errors_or_warnings(lint_findings: list[str]) -> None:
    assert lint_findings == [], "\n".join(lint_findings)


def test_cfn_lint_reports_a_dangling_reference_in_a_broken_copy(
    template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    broken = json.loads(json.dumps(template))
    del broken["Resources"]["UploadsQueue"]  # still named by the bucket, the queue policy and the outputs
    path = tmp_path_factory.mktemp("broken") / "resources.json"
    path.write_text(json.dumps(broken))

    findings = run_cfn_lint(path)

    errors = [f for f in findings if f.startswith("E")]
    assert any("UploadsQueue" in f for f in errors), "\n".join(findings)


# --- merge contract with Chalice's generated template ---------------------------------------------------------------


def test_template_can_be_merged_into_chalices_sam_template(template: dict[str, Any]) -> None:
    assert "Transform" not in template
    for logical_id, resource in template["Resources"].items():
        assert logical_id not in CHALICE_LOGICAL_IDS
        assert not logical_id.endswith(CHALICE_LOGICAL_ID_SUFFIXES), logical_id
        assert not resource["Type"].startswith("AWS::Serverless::"), logical_id


def test_stage_parameter_allows_only_chalices_aws_stages(template: dict[str, Any]) -> None:
    aws_stages = set(chalice_config()["stages"]) - {"local"}
    assert set(template["Parameters"]["Stage"]["AllowedValues"]) == aws_stages
    assert template["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_names_are_the_ones_chalices_config_gives_the_app(resources: dict[str, dict[str, Any]], stage: str) -> None:
    env = chalice_config()["stages"][stage]["environment_variables"]
    assert sub(props(resources, "PhotoTable")["TableName"], Stage=stage) == env["TABLE_NAME"]
    assert sub(props(resources, "UploadsQueue")["QueueName"], Stage=stage) == env["UPLOADS_QUEUE_NAME"]


# --- table --------------------------------------------------------------------------------------------------------


def test_table_layout_is_the_dev_stacks(resources: dict[str, dict[str, Any]]) -> None:
    table = props(resources, "PhotoTable")
    assert {key: table[key] for key in TABLE_DEFINITION} == TABLE_DEFINITION
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    # Two overloaded indexes, keyed <name>PK / <name>SK (strings), each projecting whole items.
    indexes = table["GlobalSecondaryIndexes"]
    assert [gsi["IndexName"] for gsi in indexes] == [GSI1, GSI2]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    for gsi in indexes:
        name = gsi["IndexName"]
        assert gsi["KeySchema"] == [
            {"AttributeName": f"{name}PK", "KeyType": "HASH"},
            {"AttributeName": f"{name}SK", "KeyType": "RANGE"},
        ]
        assert types[f"{name}PK"] == types[f"{name}SK"] == "S"
        assert gsi["Projection"] == {"ProjectionType": "ALL"}


def test_table_expires_items_on_the_dev_stacks_ttl_attribute(resources: dict[str, dict[str, Any]]) -> None:
    assert props(resources, "PhotoTable")["TimeToLiveSpecification"] == {
        "AttributeName": TTL_ATTRIBUTE,
        "Enabled": True,
    }


def test_table_has_point_in_time_recovery_and_encryption(resources: dict[str, dict[str, Any]]) -> None:
    table = props(resources, "PhotoTable")
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


# --- photo bucket -------------------------------------------------------------------------------------------------


def test_photo_bucket_blocks_public_access_and_is_encrypted(resources: dict[str, dict[str, Any]]) -> None:
    bucket = props(resources, "PhotoBucket")
    block = bucket["PublicAccessBlockConfiguration"]
    assert set(block) == {"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"}
    assert all(value is True for value in block.values())
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert "AccessControl" not in bucket


def test_photo_bucket_is_unversioned_so_deleted_photos_are_really_gone(resources: dict[str, dict[str, Any]]) -> None:
    assert "VersioningConfiguration" not in props(resources, "PhotoBucket")


def test_photo_bucket_notifies_the_uploads_queue_only_of_new_uploads(resources: dict[str, dict[str, Any]]) -> None:
    notifications = props(resources, "PhotoBucket")["NotificationConfiguration"]
    assert set(notifications) == {"QueueConfigurations"}
    (queue,) = notifications["QueueConfigurations"]
    assert queue["Queue"] == {"Fn::GetAtt": ["UploadsQueue", "Arn"]}
    assert queue["Event"].startswith("s3:ObjectCreated:")
    assert queue["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": UPLOADS_PREFIX}]}}


def test_photo_bucket_is_created_after_the_queue_policy_s3_validates(resources: dict[str, dict[str, Any]]) -> None:
    assert "UploadsQueuePolicy" in depends_on(resources["PhotoBucket"])


def test_photo_bucket_expires_abandoned_uploads_like_the_dev_stack(resources: dict[str, dict[str, Any]]) -> None:
    (rule,) = props(resources, "PhotoBucket")["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Prefix"] == UPLOADS_PREFIX
    # devstack.resources.create_bucket: expire after 2 days, abort incomplete multipart uploads after 1.
    assert rule["ExpirationInDays"] == 2
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_photo_bucket_cors_allows_exactly_get_head_post_from_the_spa(resources: dict[str, dict[str, Any]]) -> None:
    (rule,) = props(resources, "PhotoBucket")["CorsConfiguration"]["CorsRules"]
    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD", "POST"]
    condition, with_extra_origins, distribution_only = rule["AllowedOrigins"]["Fn::If"]
    assert condition == "HasSpaOrigins"
    # Either way the distribution's own origin is allowed; the parameter's origins are added when given.
    assert distribution_only == [{"Fn::Sub": "https://${SpaDistribution.DomainName}"}]
    delimiter, joined = with_extra_origins["Fn::Split"]
    text, variables = joined["Fn::Sub"]
    assert (delimiter, text) == (",", "https://${SpaDomain},${Extra}")
    assert variables == {
        "SpaDomain": {"Fn::GetAtt": ["SpaDistribution", "DomainName"]},
        "Extra": {"Fn::Join": [",", {"Ref": "SpaOrigins"}]},
    }


# --- uploads queue ------------------------------------------------------------------------------------------------


def test_uploads_queue_dead_letters_after_five_receives(resources: dict[str, dict[str, Any]]) -> None:
    assert props(resources, "UploadsQueue")["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["UploadsDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }


def test_uploads_queue_visibility_covers_six_worker_timeouts(resources: dict[str, dict[str, Any]]) -> None:
    worker_timeout = chalice_config()["lambda_functions"]["process_uploads"]["lambda_timeout"]
    assert props(resources, "UploadsQueue")["VisibilityTimeout"] >= 6 * worker_timeout


def test_queues_are_encrypted_and_the_dlq_keeps_messages_longest(resources: dict[str, dict[str, Any]]) -> None:
    queue, dlq = props(resources, "UploadsQueue"), props(resources, "UploadsDeadLetterQueue")
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert sub(dlq["QueueName"], Stage="dev") == "photosky-dev-uploads-dlq"


def test_uploads_queue_accepts_messages_only_from_this_stages_photo_bucket(
    resources: dict[str, dict[str, Any]],
) -> None:
    policy = props(resources, "UploadsQueuePolicy")
    assert policy["Queues"] == [{"Ref": "UploadsQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["UploadsQueue", "Arn"]}
    conditions = statement["Condition"]
    # The bucket's ARN is built from its fixed name (a GetAtt would be a cycle): both must spell it the same.
    bucket_name = props(resources, "PhotoBucket")["BucketName"]["Fn::Sub"]
    assert conditions["ArnEquals"]["aws:SourceArn"] == {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{bucket_name}"}
    assert conditions["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_dead_letter_queue_has_an_alarm_as_soon_as_it_holds_a_message(resources: dict[str, dict[str, Any]]) -> None:
    alarm = props(resources, "UploadsDeadLetterQueueAlarm")
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["UploadsDeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


# --- user pool ----------------------------------------------------------------------------------------------------


def test_spa_client_has_no_secret_and_exactly_the_dev_stacks_auth_flows(resources: dict[str, dict[str, Any]]) -> None:
    client = props(resources, "SpaClient")
    assert client["GenerateSecret"] is False
    assert sorted(client["ExplicitAuthFlows"]) == sorted(SPA_CLIENT_AUTH_FLOWS)
    assert sorted(client["ExplicitAuthFlows"]) == [
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["EnableTokenRevocation"] is True
    assert set(client["ReadAttributes"]) == {"email", "email_verified"}


def test_spa_client_tokens_live_an_hour_and_refresh_for_thirty_days(resources: dict[str, dict[str, Any]]) -> None:
    client = props(resources, "SpaClient")
    assert (client["IdTokenValidity"], client["AccessTokenValidity"], client["RefreshTokenValidity"]) == (60, 60, 30)
    assert client["TokenValidityUnits"] == {"IdToken": "minutes", "AccessToken": "minutes", "RefreshToken": "days"}


def test_password_policy_matches_the_dev_stacks(template: dict[str, Any], resources: dict[str, dict[str, Any]]) -> None:
    policy = props(resources, "UserPool")["Policies"]["PasswordPolicy"]

    def resolved(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return template["Parameters"][value["Ref"]]["Default"]
        return value

    assert {key: resolved(policy[key]) for key in PASSWORD_POLICY} == PASSWORD_POLICY


def test_user_pool_signs_in_by_username_with_a_verified_email(resources: dict[str, dict[str, Any]]) -> None:
    pool = props(resources, "UserPool")
    assert "UsernameAttributes" not in pool
    assert "AliasAttributes" not in pool
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    (email,) = [attribute for attribute in pool["Schema"] if attribute["Name"] == "email"]
    assert email["Required"] is True
    assert pool["AutoVerifiedAttributes"] == ["email"]
    assert pool["AccountRecoverySetting"]["RecoveryMechanisms"] == [{"Name": "verified_email", "Priority": 1}]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is False
    # No SMS factor: it would need an SNS role and invites SMS-pumping fraud.
    assert pool["MfaConfiguration"] in {"OFF", "OPTIONAL"}
    assert "SMS_MFA" not in pool.get("EnabledMfas", [])


# --- cursor secret ------------------------------------------------------------------------------------------------


def test_cursor_secret_is_generated_long_and_without_punctuation(resources: dict[str, dict[str, Any]]) -> None:
    generated = props(resources, "CursorSecret")["GenerateSecretString"]
    # A plain string (no SecretStringTemplate): the dynamic reference then resolves to the key itself.
    assert generated == {"PasswordLength": 48, "ExcludePunctuation": True}


# --- SPA hosting --------------------------------------------------------------------------------------------------


def test_spa_bucket_is_private(resources: dict[str, dict[str, Any]]) -> None:
    bucket = props(resources, "SpaBucket")
    assert all(
        bucket["PublicAccessBlockConfiguration"][key] is True
        for key in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    assert "WebsiteConfiguration" not in bucket
    assert "AccessControl" not in bucket
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    # An OAC cannot decrypt objects under the AWS-managed aws/s3 KMS key.
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_spa_distribution_reads_the_bucket_through_an_oac_over_https(resources: dict[str, dict[str, Any]]) -> None:
    config = props(resources, "SpaDistribution")["DistributionConfig"]
    origins = {origin["Id"]: origin for origin in config["Origins"]}
    assert set(origins) == {"spa-bucket", "photo-bucket"}
    origin = origins["spa-bucket"]
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "spa-bucket"
    assert origin["DomainName"] == {"Fn::GetAtt": ["SpaBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["SpaOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    oac = props(resources, "SpaOriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    # The app redirects http to https; media answers https only (its signed resources are https:// URLs).
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert all(b["ViewerProtocolPolicy"] == "https-only" for b in config["CacheBehaviors"])
    assert config["DefaultRootObject"] == "index.html"


def spa_routes_function_code(resources: dict[str, dict[str, Any]]) -> str:
    code: str = props(resources, "SpaRoutesFunction")["FunctionCode"]
    return code


def run_viewer_request(code: str, uris: list[str]) -> dict[str, str]:
    """{uri: the uri the CloudFront Function hands on} by running its handler under Node.js (the function is plain
    ES5, which cloudfront-js-2.0 runs)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    script = code + (
        "\nconst uris = JSON.parse(process.argv[1]);"
        "\nconst out = {};"
        "\nfor (const uri of uris) { out[uri] = handler({request: {uri: uri, headers: {}}}).uri; }"
        "\nprocess.stdout.write(JSON.stringify(out));"
    )
    result = subprocess.run(
        [node, "-e", script, json.dumps(uris)], capture_output=True, text=True, timeout=30, check=True
    )
    routed: dict[str, str] = json.loads(result.stdout)
    return routed


def test_spa_distribution_serves_the_app_shell_for_client_side_routes(resources: dict[str, dict[str, Any]]) -> None:
    config = props(resources, "SpaDistribution")["DistributionConfig"]
    (association,) = config["DefaultCacheBehavior"]["FunctionAssociations"]
    assert association == {
        "EventType": "viewer-request",
        "FunctionARN": {"Fn::GetAtt": ["SpaRoutesFunction", "FunctionARN"]},
    }
    function = props(resources, "SpaRoutesFunction")
    assert function["AutoPublish"] is True  # CloudFront only runs a published function
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    routed = run_viewer_request(
        spa_routes_function_code(resources),
        ["/", "/photos/123", "/s/abc", "/index.html", "/app.js", "/views/gallery.js", "/favicon.svg", "/nope.js"],
    )
    assert routed == {
        "/": "/index.html",
        "/photos/123": "/index.html",
        "/s/abc": "/index.html",
        # Files are served as they are; a missing one gets S3's own 403, not the app shell.
        "/index.html": "/index.html",
        "/app.js": "/app.js",
        "/views/gallery.js": "/views/gallery.js",
        "/favicon.svg": "/favicon.svg",
        "/nope.js": "/nope.js",
    }


def test_no_error_response_can_turn_a_media_403_into_the_app_shell(resources: dict[str, dict[str, Any]]) -> None:
    # CustomErrorResponses apply to the whole distribution (they are not per behaviour): a 403 for an expired
    # signature or a deleted object under /previews/ would come back as 200 index.html. The app's routes are
    # handled by the default behaviour's function instead, which media requests never run.
    config = props(resources, "SpaDistribution")["DistributionConfig"]
    assert "CustomErrorResponses" not in config
    for behaviour in config["CacheBehaviors"]:
        assert "FunctionAssociations" not in behaviour
        assert "LambdaFunctionAssociations" not in behaviour


def resolve(value: Any, names: dict[str, str], conditions: dict[str, bool]) -> Any:
    """A value with its intrinsics (Ref, Fn::Sub in both forms, Fn::If) worked out for the given names."""
    if isinstance(value, list):
        return [resolve(item, names, conditions) for item in value]
    if not isinstance(value, dict):
        return value
    if list(value) == ["Ref"]:
        return names[value["Ref"]]
    if list(value) == ["Fn::If"]:
        condition, if_true, if_false = value["Fn::If"]
        return resolve(if_true if conditions[condition] else if_false, names, conditions)
    if list(value) == ["Fn::Sub"]:
        text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        local = {**names, **{k: resolve(v, names, conditions) for k, v in variables.items()}}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: local[m.group(1)], text)
    return {key: resolve(item, names, conditions) for key, item in value.items()}


def parse_csp(policy: str) -> dict[str, set[str]]:
    directives = [part.split() for part in policy.split(";") if part.strip()]
    parsed = {name: set(sources) for name, *sources in directives}
    assert len(parsed) == len(directives), f"a directive appears twice: {policy}"
    return parsed


def csp_allows(sources: set[str], url: str) -> bool:
    """Whether a CSP source list lets the page reach `url` (exact origins and `<scheme>://*.` host wildcards). A
    source's scheme must be the URL's: CSP3 lets an https source match no wss URL."""
    parts = urllib.parse.urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    for source in sources:
        if source.rstrip("/") == origin:
            return True
        scheme, _, host = source.partition("://")
        if host.startswith("*.") and scheme == parts.scheme and parts.netloc.endswith(host[1:]):
            return True
    return False


SPA_NAMES = {"Stage": "dev", "AWS::Region": "eu-west-1", "AWS::AccountId": "210987654321", "ApiOrigin": ""}


def deployed_csp(resources: dict[str, dict[str, Any]], api_origin: str = "") -> str:
    headers = props(resources, "SpaResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    names = {**SPA_NAMES, "ApiOrigin": api_origin}
    policy: str = resolve(
        headers["ContentSecurityPolicy"]["ContentSecurityPolicy"], names, {"HasApiOrigin": bool(api_origin)}
    )
    return policy


def photo_bucket_urls(resources: dict[str, dict[str, Any]]) -> list[str]:
    """The presigned URLs the API hands out for this stage's photo bucket (as chalicelib.deps signs them)."""
    bucket = resolve(props(resources, "PhotoBucket")["BucketName"], SPA_NAMES, {})
    s3 = boto3.client(
        "s3",
        region_name=SPA_NAMES["AWS::Region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4"),
    )
    post = s3.generate_presigned_post(bucket, "uploads/u/p")["url"]
    get = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "previews/u/p/small.jpg"})
    return [post, get]


def test_spa_distribution_sends_its_own_security_headers_policy(resources: dict[str, dict[str, Any]]) -> None:
    config = props(resources, "SpaDistribution")["DistributionConfig"]
    behaviours = [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]
    assert all(b["ResponseHeadersPolicyId"] == {"Ref": "SpaResponseHeadersPolicy"} for b in behaviours)


def test_spa_security_headers_are_the_dev_servers_plus_hsts(resources: dict[str, dict[str, Any]]) -> None:
    headers = props(resources, "SpaResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    # Override: whatever the bucket's object metadata says, these are what browsers get.
    assert all(header["Override"] is True for header in headers.values())
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert "ContentTypeOptions" in headers
    assert headers["FrameOptions"]["FrameOption"] == SECURITY_HEADERS["X-Frame-Options"]
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == SECURITY_HEADERS["Referrer-Policy"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 365 * 24 * 3600
    # X-XSS-Protection is obsolete (and its filter was itself an attack surface): the CSP replaces it.
    assert "XSSProtection" not in headers


@pytest.mark.parametrize("api_origin", ["", "https://api.photos.example"])
def test_spa_csp_is_the_dev_servers_with_this_stages_origins(
    resources: dict[str, dict[str, Any]], api_origin: str
) -> None:
    region, stage, account = SPA_NAMES["AWS::Region"], SPA_NAMES["Stage"], SPA_NAMES["AWS::AccountId"]
    bucket = f"photosky-{stage}-photos-{account}-{region}"
    expected = parse_csp(
        content_security_policy(
            api=api_origin or f"https://*.execute-api.{region}.amazonaws.com",
            cognito=f"https://cognito-idp.{region}.amazonaws.com",
            storage=[f"https://{bucket}.s3.amazonaws.com", f"https://{bucket}.s3.{region}.amazonaws.com"],
        )
    )
    # ... and the live status WebSocket APIs of the region (the single stack pins its own: test_websocket_template).
    expected["connect-src"].add(f"wss://*.execute-api.{region}.amazonaws.com")
    deployed = parse_csp(deployed_csp(resources, api_origin))
    assert deployed == expected


def test_spa_csp_lets_the_spa_reach_the_api_cognito_and_presigned_urls(
    resources: dict[str, dict[str, Any]],
) -> None:
    from infra.publish_web import spa_config

    policy = parse_csp(deployed_csp(resources))
    outputs = {
        "UserPoolId": "eu-west-1_Ab12",
        "UserPoolClientId": "client",
        "Region": SPA_NAMES["AWS::Region"],
        "SpaBucketName": "photosky-dev-spa-210987654321-eu-west-1",
        "SpaDistributionId": "E2QWRUHAPOMQZL",
        "EndpointURL": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/",
    }
    config = spa_config(outputs)  # what the deployed SPA is told to call
    # A share link's page (#/s/<token>) calls the same API without a token and shows the same presigned previews.
    api_calls = [config["api_url"] + "/photos", config["api_url"] + "/public/albums/" + "A" * 43 + "/unlock"]
    # The live status socket: `<ws_url>?token=<ID token>` (WebsocketUrl, or --ws-url on the `chalice deploy` path).
    socket = spa_config(outputs, ws_url="wss://def456.execute-api.eu-west-1.amazonaws.com/api")["ws_url"] + "?token=e"
    for url in (*api_calls, socket, config["cognito_endpoint"], *photo_bucket_urls(resources)):
        assert csp_allows(policy["connect-src"], url), url
    for url in photo_bucket_urls(resources):
        assert csp_allows(policy["img-src"], url), url
    # ... and nothing else: no other region's API, no wildcard host beyond the APIs'.
    assert not csp_allows(policy["connect-src"], "https://abc123.execute-api.us-east-1.amazonaws.com/api")
    assert not csp_allows(policy["connect-src"], "wss://abc123.execute-api.us-east-1.amazonaws.com/api")
    assert not csp_allows(policy["connect-src"], "https://attacker.example/")
    assert not csp_allows(policy["connect-src"], "wss://attacker.example/")
    assert sorted(s for s in policy["connect-src"] | policy["img-src"] if "*" in s) == [
        "https://*.execute-api.eu-west-1.amazonaws.com",
        "wss://*.execute-api.eu-west-1.amazonaws.com",
    ]
    assert policy["script-src"] == {"'self'"}
    assert policy["frame-ancestors"] == {"'none'"}


def test_spa_csp_fits_cloudfronts_header_limit(resources: dict[str, dict[str, Any]]) -> None:
    longest = "https://" + "a" * 60 + ".execute-api.ap-southeast-4.amazonaws.com"
    assert len(deployed_csp(resources, longest).replace("eu-west-1", "ap-southeast-4")) <= 1783


def test_spa_bucket_policy_lets_only_this_distribution_read(resources: dict[str, dict[str, Any]]) -> None:
    policy = props(resources, "SpaBucketPolicy")
    assert policy["Bucket"] == {"Ref": "SpaBucket"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"
    assert statement["Resource"] == {"Fn::Sub": "${SpaBucket.Arn}/*"}
    assert statement["Condition"] == {
        "StringEquals": {
            "AWS:SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${SpaDistribution}"
            }
        }
    }


# --- media: previews/ and originals/ through the SPA distribution ----------------------------------------------------

MEDIA_CACHE_POLICIES = {"/previews/*": "MediaPreviewsCachePolicy", "/originals/*": "MediaOriginalsCachePolicy"}
# Issue 14: the worker writes previews with `Cache-Control: private, max-age=31536000, immutable`; originals are
# written once and never overwritten either.
OBJECT_MAX_AGE = 31536000


def media_behaviours(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    config = props(resources, "SpaDistribution")["DistributionConfig"]
    return {behaviour["PathPattern"]: behaviour for behaviour in config["CacheBehaviors"]}


def cache_policy(resources: dict[str, dict[str, Any]], logical_id: str) -> dict[str, Any]:
    config: dict[str, Any] = props(resources, logical_id)["CachePolicyConfig"]
    return config


def test_media_behaviours_serve_the_photo_bucket_to_signed_urls_only(resources: dict[str, dict[str, Any]]) -> None:
    behaviours = media_behaviours(resources)
    assert set(behaviours) == set(MEDIA_CACHE_POLICIES)  # uploads/ (unchecked files) is never served
    for path, policy in MEDIA_CACHE_POLICIES.items():
        behaviour = behaviours[path]
        assert behaviour["TargetOriginId"] == "photo-bucket"
        assert behaviour["TrustedKeyGroups"] == [{"Ref": "MediaKeyGroup"}]
        assert "TrustedSigners" not in behaviour  # the legacy root-account key pairs
        assert behaviour["AllowedMethods"] == behaviour["CachedMethods"] == ["GET", "HEAD"]
        assert behaviour["Compress"] is False  # JPEG/PNG/HEIC are compressed already
        assert behaviour["CachePolicyId"] == {"Ref": policy}
        assert "OriginRequestPolicyId" not in behaviour  # nothing beyond the cache key reaches S3


def test_media_origin_is_the_photo_bucket_through_its_own_oac(resources: dict[str, dict[str, Any]]) -> None:
    config = props(resources, "SpaDistribution")["DistributionConfig"]
    (origin,) = [origin for origin in config["Origins"] if origin["Id"] == "photo-bucket"]
    bucket = resolve(props(resources, "PhotoBucket")["BucketName"], SPA_NAMES, {})
    # The bucket's RegionalDomainName, spelt from its fixed name (a GetAtt would be a cycle through its CORS rule).
    names = {**SPA_NAMES, "AWS::URLSuffix": "amazonaws.com"}
    assert resolve(origin["DomainName"], names, {}) == f"{bucket}.s3.{SPA_NAMES['AWS::Region']}.amazonaws.com"
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["MediaOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    oac = props(resources, "MediaOriginAccessControl")["OriginAccessControlConfig"]
    # Always signed: S3 honours response-content-disposition only on signed requests.
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )


def test_previews_are_cached_at_the_edge_by_their_path_alone(resources: dict[str, dict[str, Any]]) -> None:
    config = cache_policy(resources, "MediaPreviewsCachePolicy")
    key = config["ParametersInCacheKeyAndForwardedToOrigin"]
    # Every viewer's signed URL hits one copy, and no viewer's query string, header or cookie reaches S3.
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["EnableAcceptEncodingGzip"] is False
    assert key["EnableAcceptEncodingBrotli"] is False
    # `private` objects are cached only when MinTTL > 0, and then for MinTTL (max-age is not used).
    assert config["MinTTL"] == OBJECT_MAX_AGE
    assert config["MinTTL"] <= config["DefaultTTL"] <= config["MaxTTL"]


def test_originals_forward_only_the_download_filename_to_s3(resources: dict[str, dict[str, Any]]) -> None:
    config = cache_policy(resources, "MediaOriginalsCachePolicy")
    key = config["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["QueryStringsConfig"] == {
        "QueryStringBehavior": "whitelist",
        "QueryStrings": ["response-content-disposition"],
    }
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["EnableAcceptEncodingGzip"] is False
    assert key["EnableAcceptEncodingBrotli"] is False
    assert config["MinTTL"] == OBJECT_MAX_AGE
    assert config["MinTTL"] <= config["DefaultTTL"] <= config["MaxTTL"]


def test_photo_bucket_lets_only_this_distribution_read_previews_and_originals(
    resources: dict[str, dict[str, Any]],
) -> None:
    policy = props(resources, "PhotoBucketPolicy")
    assert policy["Bucket"] == {"Ref": "PhotoBucket"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"
    patterns = [resource["Fn::Sub"] for resource in statement["Resource"]]
    assert sorted(patterns) == ["${PhotoBucket.Arn}/originals/*", "${PhotoBucket.Arn}/previews/*"]
    assert statement["Condition"] == props(resources, "SpaBucketPolicy")["PolicyDocument"]["Statement"][0]["Condition"]
    # ... which covers every object the app serves, and no upload.
    served = [keys.original_object("u-1", "p-1"), *keys.preview_objects("u-1", "p-1")]
    for key in served:
        assert any(fnmatch.fnmatchcase(f"${{PhotoBucket.Arn}}/{key}", pattern) for pattern in patterns), key
    upload = f"${{PhotoBucket.Arn}}/{keys.upload_object('u-1', 'p-1')}"
    assert not any(fnmatch.fnmatchcase(upload, pattern) for pattern in patterns)


def test_media_is_served_from_the_spas_own_origin_which_its_csp_allows(
    template: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # Same distribution, same origin: 'self' covers media URLs, and devstack/web.py's CSP needs no new source.
    outputs = template["Outputs"]
    assert outputs["MediaUrl"]["Value"] == outputs["SpaUrl"]["Value"]
    policy = parse_csp(deployed_csp(resources))
    assert "'self'" in policy["img-src"]
    assert "'self'" in policy["connect-src"]


# --- media signing keys -------------------------------------------------------------------------------------------


def p256_public_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_media_public_keys_come_in_two_slots_at_least_one_given(template: dict[str, Any]) -> None:
    pem = p256_public_pem()
    for slot in "AB":
        parameter = template["Parameters"][f"MediaPublicKey{slot}"]
        assert (parameter["Type"], parameter["Default"]) == ("String", "")
        pattern = parameter["AllowedPattern"]  # CloudFormation matches the whole value
        assert re.fullmatch(pattern, "")
        assert re.fullmatch(pattern, pem)
        assert re.fullmatch(pattern, pem.strip())
        # Pasting the private key by mistake is refused before anything is deployed.
        assert not re.fullmatch(pattern, pem.replace("PUBLIC KEY", "PRIVATE KEY"))
        assert not re.fullmatch(pattern, pem.replace("PUBLIC KEY", "EC PRIVATE KEY"))
        assert template["Conditions"][f"HasMediaKey{slot}"] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": f"MediaPublicKey{slot}"}, ""]}]
        }
    (assertion,) = template["Rules"]["MediaSigningKeyGiven"]["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Or": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "MediaPublicKeyA"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "MediaPublicKeyB"}, ""]}]},
        ]
    }


def test_each_slot_is_its_own_public_key_and_the_group_holds_those_given(resources: dict[str, dict[str, Any]]) -> None:
    for slot in "AB":
        key = resources[f"MediaPublicKeySlot{slot}"]
        assert key["Type"] == "AWS::CloudFront::PublicKey"
        assert key["Condition"] == f"HasMediaKey{slot}"
        config = key["Properties"]["PublicKeyConfig"]
        # A slot's resource only ever holds its own parameter: a key never moves to another resource (and id).
        assert config["EncodedKey"] == {"Ref": f"MediaPublicKey{slot}"}
    # Public key names are per account (CloudFront is global): stage, region and slot keep stacks apart.
    configs = [props(resources, f"MediaPublicKeySlot{slot}")["PublicKeyConfig"] for slot in "AB"]
    names_of_keys = [resolve(config["Name"], SPA_NAMES, {}) for config in configs]
    assert names_of_keys == ["photosky-dev-media-a-eu-west-1", "photosky-dev-media-b-eu-west-1"]
    items = props(resources, "MediaKeyGroup")["KeyGroupConfig"]["Items"]
    names = {"MediaPublicKeySlotA": "KAAAA", "MediaPublicKeySlotB": "KBBBB", "AWS::NoValue": ""}
    for a, b in [(True, False), (False, True), (True, True)]:
        group = [item for item in resolve(items, names, {"HasMediaKeyA": a, "HasMediaKeyB": b}) if item]
        assert group == [key for key, given in (("KAAAA", a), ("KBBBB", b)) if given]


# The rotation in docs/MEDIA.md as (slot A, slot B, key the secret holds) after each step, from a first deploy
# with key 1 through two rotations. CloudFormation cannot change a public key in place, so from one step to the
# next a slot may only be filled (from empty), cleared, or left alone; and the key that signs is always trusted.
ROTATION = [
    ("k1", "", "k1"),  # first deploy with key 1 in slot A, then activate it
    ("k1", "k2", "k1"),  # rotation: key 2 into the empty slot
    ("k1", "k2", "k2"),  # activate key 2 (then wait at least 3 W)
    ("", "k2", "k2"),  # clear key 1's slot
    ("k3", "k2", "k2"),  # next rotation: key 3 into the empty slot, which is now A
    ("k3", "k2", "k3"),
    ("k3", "", "k3"),
]


def test_the_documented_rotation_never_changes_a_key_in_place() -> None:
    for before, after in itertools.pairwise(ROTATION):
        for slot in (0, 1):
            assert before[slot] == after[slot] or "" in (before[slot], after[slot]), (before, after)
    for a, b, signing in ROTATION:
        assert signing in {a, b} - {""}


def test_the_media_signing_key_secret_is_created_empty(resources: dict[str, dict[str, Any]]) -> None:
    # CloudFormation cannot generate an EC key; with no value in the template, no deploy can overwrite the key
    # `ops.media_keys activate` put there.
    secret = props(resources, "MediaSigningKey")
    assert "SecretString" not in secret
    assert "GenerateSecretString" not in secret
    assert sub(secret["Name"], Stage="dev") == "photosky-dev-media-signing-key"


def test_media_outputs_name_the_key_ids_and_the_secret(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["MediaSigningKeySecretArn"]["Value"] == {"Ref": "MediaSigningKey"}
    for slot in "AB":
        output = outputs[f"MediaPublicKey{slot}Id"]
        assert output["Condition"] == f"HasMediaKey{slot}"
        assert output["Value"] == {"Ref": f"MediaPublicKeySlot{slot}"}  # a public key's Ref is its id
        assert "Export" not in output  # ids change at each rotation; an imported export could not


# --- protections and policies across the template ------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", ["PhotoTable", "PhotoBucket", "UserPool"])
def test_stateful_resources_are_always_retained(resources: dict[str, dict[str, Any]], logical_id: str) -> None:
    resource = resources[logical_id]
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_no_resource_attribute_needs_the_language_extensions_transform(resources: dict[str, dict[str, Any]]) -> None:
    for resource in resources.values():
        for attribute in ("DeletionPolicy", "UpdateReplacePolicy"):
            assert isinstance(resource.get(attribute, "Delete"), str)


def test_table_and_user_pool_have_deletion_protection_in_prod(resources: dict[str, dict[str, Any]]) -> None:
    assert props(resources, "PhotoTable")["DeletionProtectionEnabled"] == {"Fn::If": ["IsProd", True, False]}
    assert props(resources, "UserPool")["DeletionProtection"] == {"Fn::If": ["IsProd", "ACTIVE", "INACTIVE"]}


def test_no_policy_grants_to_or_on_a_wildcard(resources: dict[str, dict[str, Any]]) -> None:
    documents = policy_documents(resources)
    assert len(documents) >= 2  # the queue policy and the SPA bucket policy at least
    for document in documents:
        for statement in document["Statement"]:
            assert "NotPrincipal" not in statement
            assert "NotResource" not in statement
            assert not [s for s in strings_in(statement["Principal"]) if "*" in s], statement
            # The only star allowed is "every object of this (named) bucket".
            resources_named = strings_in(statement["Resource"])
            assert not [s for s in resources_named if "*" in s.removesuffix("/*")], statement


def test_every_output_is_exported_under_the_stage(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in EXPORTED_OUTPUTS:
        assert name in outputs, name
        assert outputs[name]["Export"]["Name"] == {"Fn::Sub": f"photosky-${{Stage}}-{name}"}
    assert outputs["SpaUrl"]["Value"] == {"Fn::Sub": "https://${SpaDistribution.DomainName}"}
