"""`python -m infra.package --stage dev|prod`: PhotoSky as one CloudFormation (SAM) stack, checked offline.

1. Renders infra/policies/*.json into .chalice/policy-*.json (one least-privilege policy per function).
2. Runs `chalice package` under this interpreter (Chalice takes the Lambda runtime from it: Python 3.12+).
3. Merges infra/resources.yaml into Chalice's template and wires the functions to those resources: environment
   variables, the API authorizer's user pool, the SQS trigger, the policies' ARNs as Fn::Sub, and the API stage's
   throttling (a default per method, lower limits for the public share-link routes), and two concurrency
   parameters (the worker's event source's maximum concurrency, the API's reserved concurrency). Chalice's own
   --merge-template cannot do this: the pool ARN sits inside the API's OpenAPI body and must become an intrinsic.
   Every function runs on arm64 (Graviton: a lower price per GB-s than x86_64); the API publishes a version with
   SnapStart under the alias `live`, and API Gateway invokes that alias. The WebSocket API (app.py's on_ws_*
   handlers) gets the REST stage's throttling and no execution or access logging (the ID token is in the connect
   URL's query string), and the functions that push or accept connections get its management endpoint.
4. Adds bytecode compiled for the runtime to deployment.zip: Chalice ships none, so every cold start would
   compile every module (measured: about twice the import CPU).
5. Refuses a package holding native code: Chalice downloads wheels for its own `lambda_architecture` setting
   (x86_64 unless .chalice/config.json says otherwise), while the architecture is set here, so deployment.zip must
   stay pure Python (requirements.txt); native libraries belong in the layer.

6. Builds the worker's image libraries (requirements-worker.txt) into a Lambda layer from manylinux aarch64
   wheels, attached to the worker and the reconciler only: the API's package carries no image code.

Writes build/<stage>/{template.json,deployment.zip,image-layer.zip}; deploy with `aws cloudformation package` +
`deploy` (see the README). `--layer-only` builds just build/image-layer.zip (for the `chalice deploy` path).
"""

from __future__ import annotations

import argparse
import compileall
import copy
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
POLICIES_DIR = Path(__file__).resolve().parent / "policies"
RESOURCES_TEMPLATE = Path(__file__).resolve().parent / "resources.yaml"
WORKER_REQUIREMENTS = PROJECT_DIR / "requirements-worker.txt"
LAYER_FUNCTIONS = ("ProcessUploads", "ReleaseAbandonedUploads")
LAMBDA_PYTHON = "3.12"
# Every function's instruction set (Lambda's name for it) and the same machine as wheel tags and ELF headers name it.
LAMBDA_ARCHITECTURE = "arm64"
WHEEL_ARCHITECTURE = "aarch64"
# Lambda's python3.12 runtime runs on Amazon Linux 2023 (glibc 2.34): these wheel platforms load there.
LAMBDA_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
STAGES = ("dev", "prod")

# Chalice imports app.py to package it and the app reads the pool ARN at import; this stand-in is replaced by
# the real pool's ARN (Fn::GetAtt) and must not survive anywhere in the output.
SENTINEL_POOL_ARN = "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_PackagingSentinel"

# What each function's environment gets from the resources stack.
WIRED_ENVIRONMENT: dict[str, Any] = {
    "TABLE_NAME": {"Ref": "PhotoTable"},
    "BUCKET_NAME": {"Ref": "PhotoBucket"},
    "COGNITO_USER_POOL_ARN": {"Fn::GetAtt": ["UserPool", "Arn"]},
    "UPLOADS_QUEUE_NAME": {"Fn::GetAtt": ["UploadsQueue", "QueueName"]},
    # Only the ARN: the API reads the key on first use, so it never appears in the template or Lambda settings.
    "PHOTOSKY_CURSOR_SECRET_ARN": {"Ref": "CursorSecret"},
}
# The API answers CORS (preflights included, see app.py) for the SPA's distribution and the SpaOrigins parameter.
# It alone signs media URLs: for the SPA's own distribution (previews/ and originals/ behaviours), with the key in
# the MediaSigningKey secret (only its ARN here, as for the cursor key).
API_ENVIRONMENT: dict[str, Any] = {
    "PHOTOSKY_MEDIA_URL": {"Fn::Sub": "https://${SpaDistribution.DomainName}"},
    "PHOTOSKY_MEDIA_KEY_SECRET_ARN": {"Ref": "MediaSigningKey"},
    "PHOTOSKY_ALLOWED_ORIGINS": {
        "Fn::If": [
            "HasSpaOrigins",
            {
                "Fn::Sub": [
                    "https://${SpaDomain},${Extra}",
                    {
                        "SpaDomain": {"Fn::GetAtt": ["SpaDistribution", "DomainName"]},
                        "Extra": {"Fn::Join": [",", {"Ref": "SpaOrigins"}]},
                    },
                ]
            },
            {"Fn::Sub": "https://${SpaDistribution.DomainName}"},
        ]
    },
}
FUNCTION_NAMES = {
    "APIHandler": "api",
    "ProcessUploads": "process-uploads",
    "ReleaseAbandonedUploads": "reconcile",
    "WebsocketConnect": "ws-connect",
    "WebsocketDisconnect": "ws-disconnect",
    "WebsocketMessage": "ws-message",
}

# Chalice's WebSocket API (app.py's on_ws_connect/on_ws_disconnect/on_ws_message): the resources `chalice package`
# emits for it, and the three functions it names websocket_connect, websocket_disconnect and websocket_message.
WEBSOCKET_API = "WebsocketAPI"
WEBSOCKET_STAGE = "WebsocketAPIStage"
WEBSOCKET_ROUTES = {
    "$connect": "WebsocketConnect",
    "$disconnect": "WebsocketDisconnect",
    "$default": "WebsocketMessage",
}
# The management API (@connections) of the WebSocket API's stage: chalicelib.realtime posts messages there and
# closes connections; `{stage}` is the stage name Chalice gives the API (its api_gateway_stage).
WEBSOCKET_MANAGEMENT_URL = "https://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/{stage}"
WEBSOCKET_ORIGIN = "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
WEBSOCKET_URL = WEBSOCKET_ORIGIN + "/{stage}"
# Who gets which realtime setting (chalicelib.config: without the management URL a function neither accepts
# connections nor pushes): the connect function checks ID tokens (the SPA client is their audience; the pool is
# COGNITO_USER_POOL_ARN's, wired everywhere) and closes a user's oldest connection beyond the bound; the message
# function answers pings; the API, the worker and the reconciler push photo and album changes. The disconnect
# function only forgets a connection (its items in the table).
REALTIME_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "APIHandler": ("PHOTOSKY_WS_MANAGEMENT_URL",),
    "ProcessUploads": ("PHOTOSKY_WS_MANAGEMENT_URL",),
    "ReleaseAbandonedUploads": ("PHOTOSKY_WS_MANAGEMENT_URL",),
    "WebsocketConnect": ("PHOTOSKY_WS_MANAGEMENT_URL", "PHOTOSKY_USER_POOL_CLIENT_ID"),
    "WebsocketMessage": ("PHOTOSKY_WS_MANAGEMENT_URL",),
}


def realtime_environment(logical_id: str, websocket_stage: str) -> dict[str, Any]:
    """The realtime settings one function gets (none for a function REALTIME_FUNCTIONS does not name)."""
    values = {
        "PHOTOSKY_WS_MANAGEMENT_URL": {"Fn::Sub": WEBSOCKET_MANAGEMENT_URL.replace("{stage}", websocket_stage)},
        "PHOTOSKY_USER_POOL_CLIENT_ID": {"Ref": "SpaClient"},
    }
    return {name: values[name] for name in REALTIME_FUNCTIONS.get(logical_id, ())}


# SnapStart for the API only (the two others are not on a user's path, and each published version's snapshot is
# billed while cached). It applies to published versions only, so SAM publishes one per deploy under this alias,
# and API Gateway and its invoke permission name the alias, never $LATEST (which would run without a snapshot).
# SnapStart does not combine with provisioned concurrency, EFS or more than 512 MB of ephemeral storage.
API_FUNCTION = "APIHandler"
API_ALIAS = "live"
API_INVOKE_PERMISSION = "APIHandlerInvokePermission"
_UNQUALIFIED_API = "${APIHandler.Arn}"
# SAM resolves `Ref: <function>.Alias` to the alias it creates (AWS::Lambda::Alias, whose Ref is its ARN). As an
# Fn::Sub variable rather than `${APIHandler.Alias}` in the text: cfn-lint knows the Ref form, not the Sub one.
_API_ALIAS_VARIABLE = "ApiHandlerLiveAlias"

# Concurrency (issue 17, docs/SCALE.md): two stack parameters, added to the merged template here rather than in
# resources.yaml, whose standalone stack has no function to apply them to (cfn-lint flags an unused parameter).
# - WorkerMaximumConcurrency: the worker's SQS event source invokes at most this many environments at once
#   (ScalingConfig.MaximumConcurrency, 2..1,000), so a burst of uploads waits in the queue instead of taking the
#   account's concurrency from the API. AWS advises this over reserved concurrency for an SQS consumer: the event
#   source does not see a reservation, receives more than the function may run and gets throttled invocations,
#   whose messages go back to the queue counting towards maxReceiveCount (then the dead-letter queue). 200 keeps
#   four fifths of a default account (1,000) for the API and settles about 700 uploads/s (docs/SCALE.md).
# - WorkerMaximumPollers: 0 keeps that standard mode. Above 0, the event source runs in provisioned mode instead
#   (the two are mutually exclusive): at least 2 and at most this many dedicated pollers, which scale about three
#   times as fast and reach far beyond standard mode's ceiling (about 1,250 concurrent invocations, and
#   MaximumConcurrency stops at 1,000). The worker needs ~1,450 at docs/SCALE.md's 5,000 uploads/s: provisioned
#   mode is how a stage meets it. Pollers are billed while provisioned, so it is off by default.
# - ApiReservedConcurrency: concurrency set aside for the API (and its ceiling), 0 for none. Off by default: a
#   reservation must leave 100 unreserved in the account, and new accounts may start below 1,000, so a default
#   would make a fresh account's deploy fail. Set it once the account's quota is raised (docs/SCALE.md).
WORKER_MAXIMUM_CONCURRENCY = "WorkerMaximumConcurrency"
WORKER_MAXIMUM_POLLERS = "WorkerMaximumPollers"
API_RESERVED_CONCURRENCY = "ApiReservedConcurrency"
CONCURRENCY_PARAMETERS: dict[str, Any] = {
    WORKER_MAXIMUM_CONCURRENCY: {
        "Type": "Number",
        "Default": 200,
        "MinValue": 2,
        "MaxValue": 1000,
        "Description": "At most this many upload workers run at once (the SQS event source's MaximumConcurrency).",
    },
    WORKER_MAXIMUM_POLLERS: {
        "Type": "Number",
        "Default": 0,
        "MinValue": 0,
        "MaxValue": 10000,
        "Description": (
            "0: the worker's SQS event source scales on its own up to WorkerMaximumConcurrency. Above 0: provisioned "
            "mode, with 2 to this many dedicated pollers (billed while provisioned; WorkerMaximumConcurrency unused)."
        ),
    },
    API_RESERVED_CONCURRENCY: {
        "Type": "Number",
        "Default": 0,
        "MinValue": 0,
        "Description": (
            "Concurrency reserved for the API function (also its ceiling); 0 reserves none. The account must keep "
            "100 unreserved."
        ),
    },
}
HAS_API_RESERVATION = "HasApiReservedConcurrency"
HAS_PROVISIONED_POLLERS = "HasWorkerProvisionedPollers"
CONCURRENCY_CONDITIONS: dict[str, Any] = {
    HAS_API_RESERVATION: {"Fn::Not": [{"Fn::Equals": [{"Ref": API_RESERVED_CONCURRENCY}, "0"]}]},
    HAS_PROVISIONED_POLLERS: {"Fn::Not": [{"Fn::Equals": [{"Ref": WORKER_MAXIMUM_POLLERS}, "0"]}]},
}
# Provisioned mode's floor for an SQS event source (Lambda's ProvisionedPollerConfig: at least 2).
MINIMUM_SQS_POLLERS = 2

# The API stage's default limit for each method (requests per second, burst), shared by every caller of the
# method; API Gateway answers 429 (the THROTTLED response below) above it.
THROTTLING = {"dev": (20, 40), "prod": (200, 400)}


def websocket_route_settings(stage: str) -> dict[str, Any]:
    """The WebSocket stage's default for every route ($connect, each client message, $disconnect): the REST stage's
    limits, so a flood of connects (anyone may try one, and each runs the connect function's token check) is capped
    like one of REST requests. Execution logging OFF and no data trace, explicitly: API Gateway would log each
    request's details, and a connect's query string holds the user's ID token (the stage has no AccessLogSettings
    either). No per-route metrics: CloudWatch bills each one, and the stage's own suffice."""
    rate, burst = THROTTLING[stage]
    return {
        "ThrottlingRateLimit": rate,
        "ThrottlingBurstLimit": burst,
        "LoggingLevel": "OFF",
        "DataTraceEnabled": False,
        "DetailedMetricsEnabled": False,
    }


# The share-link routes need no token, so anyone holding (or guessing at) a link can call them as fast as they like:
# each gets its own, lower ceiling, a method setting that overrides the stage default for that method only.
# Guessing a 256-bit token is hopeless and the app locks a link after 10 wrong passwords in 15 minutes; these caps
# bound what a flood costs in Lambda time, DynamoDB reads and account concurrency shared with the signed-in API.
# - GET: a page is a Query, a BatchGetItem and up to 300 presigned URLs (about 0.1 s of CPU on a full core, so
#   ~0.3 s on the API's 512 MB). A visitor reads one page, then one per scroll; images come from S3, not from
#   here. 50/s in prod is 180,000 pages an hour, about 15 Lambdas busy at once: a quarter of the stage default.
# - unlock: every call that reaches the password check costs an scrypt hash (n=2**14, r=8: 16 MiB, ~50 ms on a
#   full core, ~170 ms at 512 MB). A visitor unlocks once per access token (an hour at most): 5/s is 18,000
#   visitors an hour at about one busy Lambda. The ceiling is shared by every caller, so a flood can make
#   unlocking wait (429 with Retry-After) but never costs more than that; a per-IP AWS WAF rate rule is the step
#   beyond this.
# Dev has the same shape at lower figures, with bursts a developer will not reach by hand.
PUBLIC_ROUTE_THROTTLING: dict[tuple[str, str], dict[str, tuple[int, int]]] = {
    ("/public/albums/{token}", "GET"): {"dev": (10, 20), "prod": (50, 100)},
    ("/public/albums/{token}/unlock", "POST"): {"dev": (2, 4), "prod": (5, 10)},
}

# What the SPA may send beyond the CORS-safelisted headers: chalicelib.web.ALLOWED_REQUEST_HEADERS (a test keeps
# them equal). X-Link-Access carries a password link's access token to the public album routes.
ALLOWED_REQUEST_HEADERS = ("Authorization", "Content-Type", "X-Link-Access")

# Errors API Gateway itself produces (authorizer 401s, unknown routes, throttling) carry the SPA's CORS headers,
# or the browser hides them from the SPA. Unknown routes get a plain 404: by default API Gateway answers 403
# and echoes the caller's Authorization header (the ID token) back in the body.
# They live in the OpenAPI body (not as separate resources, which drift when the body changes); the `chalice deploy`
# path puts the same ones (infra/after_chalice_deploy.py), both from gateway_responses().
SPA_DISTRIBUTION_ORIGIN = {"Fn::Sub": "'https://${SpaDistribution.DomainName}'"}
GATEWAY_RESPONSES: dict[str, dict[str, Any]] = {
    "DEFAULT_4XX": {},
    "DEFAULT_5XX": {},
    "UNAUTHORIZED": {"statusCode": 401},
    "MISSING_AUTHENTICATION_TOKEN": {
        "statusCode": 404,
        "responseTemplates": {"application/json": '{"Code": "NotFoundError", "Message": "no such route"}'},
    },
    # Stage throttling: the contract's error shape and a Retry-After (exposed to the SPA), so clients wait it out
    # as they do the API's own 429s instead of failing at once.
    "THROTTLED": {
        "statusCode": 429,
        "responseParameters": {
            "gatewayresponse.header.Retry-After": "'1'",
            "gatewayresponse.header.Access-Control-Expose-Headers": "'Retry-After'",
        },
        "responseTemplates": {
            "application/json": '{"Code": "TooManyRequestsError", "Message": "the API is busy: retry shortly"}'
        },
    },
}


def gateway_responses(allow_origin: Any) -> dict[str, dict[str, Any]]:
    """GATEWAY_RESPONSES with the CORS headers, allowing `allow_origin`: a quoted static value ("'https://…'") or an
    intrinsic that gives one. In the shape of both the OpenAPI extension and put_gateway_response."""
    cors = {
        "gatewayresponse.header.Access-Control-Allow-Origin": allow_origin,
        "gatewayresponse.header.Access-Control-Allow-Headers": f"'{','.join(ALLOWED_REQUEST_HEADERS)}'",
        "gatewayresponse.header.Vary": "'Origin'",
    }
    return {
        response_type: {**extra, "responseParameters": {**cors, **extra.get("responseParameters", {})}}
        for response_type, extra in GATEWAY_RESPONSES.items()
    }


class PackagingError(Exception):
    pass


def render_policies() -> None:
    """Copy the policy templates where Chalice reads them; their ${...} placeholders become Fn::Sub later."""
    for source in POLICIES_DIR.glob("*.json"):
        shutil.copyfile(source, PROJECT_DIR / ".chalice" / f"policy-{source.stem}.json")


def run_chalice_package(stage: str, out_dir: Path) -> None:
    if sys.version_info < (3, 12):
        raise PackagingError("package with Python 3.12+: Chalice takes the Lambda runtime from this interpreter")
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "COGNITO_USER_POOL_ARN": SENTINEL_POOL_ARN,
    }
    env.pop("AWS_ENDPOINT_URL", None)
    chalice = Path(sys.executable).with_name("chalice")
    result = subprocess.run(  # noqa: S603 - our own venv's chalice, fixed arguments
        [str(chalice), "package", "--stage", stage, "--pkg-format", "cloudformation", str(out_dir)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise PackagingError(f"chalice package failed:\n{result.stdout}\n{result.stderr}")


def load_resources_template() -> dict[str, Any]:
    from cfnlint.decode.cfn_yaml import loads

    # cfn-lint's loader turns the short forms (!Ref, !Sub, ...) into their JSON forms.
    loaded: dict[str, Any] = json.loads(json.dumps(loads(RESOURCES_TEMPLATE.read_text())))
    return loaded


def _sub_placeholders(value: Any) -> Any:
    """Every string holding a CloudFormation ${...} placeholder becomes an Fn::Sub of itself."""
    if isinstance(value, str) and "${" in value:
        return {"Fn::Sub": value}
    if isinstance(value, list):
        return [_sub_placeholders(item) for item in value]
    if isinstance(value, dict):
        return {key: _sub_placeholders(item) for key, item in value.items()}
    return value


def wire_function(logical_id: str, properties: dict[str, Any], websocket_stage: str) -> None:
    """One function's environment, name, architecture and (the worker's) triggers and layer."""
    wired = {
        **WIRED_ENVIRONMENT,
        **(API_ENVIRONMENT if logical_id == API_FUNCTION else {}),
        **realtime_environment(logical_id, websocket_stage),
    }
    properties.setdefault("Environment", {}).setdefault("Variables", {}).update(wired)
    properties["FunctionName"] = {"Fn::Sub": f"photosky-${{Stage}}-{FUNCTION_NAMES[logical_id]}"}
    properties["Architectures"] = [LAMBDA_ARCHITECTURE]
    if logical_id == API_FUNCTION:
        properties["AutoPublishAlias"] = API_ALIAS
        # By default SAM publishes a new version only when the code, environment, memory or SnapStart setting
        # changes; with this, any property does (a timeout or a layer too), so the alias never lags the template.
        properties["AutoPublishAliasAllProperties"] = True
        # SAM retains superseded versions by default, and each Python SnapStart version's snapshot is billed for as
        # long as the version exists: delete a version once the alias has moved on (at the update's cleanup).
        properties["VersionDeletionPolicy"] = "Delete"
        properties["SnapStart"] = {"ApplyOn": "PublishedVersions"}
        properties["ReservedConcurrentExecutions"] = {
            "Fn::If": [HAS_API_RESERVATION, {"Ref": API_RESERVED_CONCURRENCY}, {"Ref": "AWS::NoValue"}]
        }
    if logical_id in LAYER_FUNCTIONS:
        properties["Layers"] = [{"Ref": "ImageLibrariesLayer"}]
    for event in properties.get("Events", {}).values():
        if event["Type"] == "SQS":
            event["Properties"]["Queue"] = {"Fn::GetAtt": ["UploadsQueue", "Arn"]}
            event["Properties"]["ScalingConfig"] = {
                "Fn::If": [
                    HAS_PROVISIONED_POLLERS,
                    {"Ref": "AWS::NoValue"},
                    {"MaximumConcurrency": {"Ref": WORKER_MAXIMUM_CONCURRENCY}},
                ]
            }
            event["Properties"]["ProvisionedPollerConfig"] = {
                "Fn::If": [
                    HAS_PROVISIONED_POLLERS,
                    {"MinimumPollers": MINIMUM_SQS_POLLERS, "MaximumPollers": {"Ref": WORKER_MAXIMUM_POLLERS}},
                    {"Ref": "AWS::NoValue"},
                ]
            }


def add_concurrency_parameters(template: dict[str, Any]) -> None:
    """The concurrency parameters and their condition; refused if the template already has one of them (a second
    definition, e.g. in resources.yaml, would be silently replaced by this one)."""
    for section, own in (("Parameters", CONCURRENCY_PARAMETERS), ("Conditions", CONCURRENCY_CONDITIONS)):
        existing = template.setdefault(section, {})
        for name, value in own.items():
            if name in existing:
                raise PackagingError(f"{section}.{name} is defined twice: infra/package.py adds it")
            existing[name] = copy.deepcopy(value)


def merge_and_wire(chalice_template: dict[str, Any], resources: dict[str, Any], stage: str) -> dict[str, Any]:
    template = copy.deepcopy(chalice_template)
    for section in ("Parameters", "Rules", "Conditions", "Outputs", "Resources"):
        own = template.setdefault(section, {})
        for name, value in resources.get(section, {}).items():
            if name in own:
                raise PackagingError(f"{section}.{name} is defined both by Chalice and by resources.yaml")
            own[name] = value
    template["Parameters"]["Stage"]["Default"] = stage
    add_concurrency_parameters(template)
    template.setdefault("Description", f"PhotoSky ({stage}): API, upload worker and their resources")
    websocket_stage = wire_websocket_api(template, stage)

    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            wire_function(logical_id, properties, websocket_stage)
        if resource["Type"] == "AWS::IAM::Role" and logical_id.endswith("Role"):
            properties["Policies"] = _sub_placeholders(properties.get("Policies", []))

    template["Resources"]["ImageLibrariesLayer"] = {
        "Type": "AWS::Serverless::LayerVersion",
        "Properties": {
            "LayerName": f"photosky-{stage}-image-libraries",
            "Description": "Pillow and pillow-heif for the upload worker",
            "ContentUri": "./image-layer.zip",
            "CompatibleRuntimes": [f"python{LAMBDA_PYTHON}"],
            "CompatibleArchitectures": [LAMBDA_ARCHITECTURE],
            "RetentionPolicy": "Delete",
        },
    }
    api = template["Resources"]["RestAPI"]["Properties"]
    api_body = api["DefinitionBody"]
    invoke_the_api_alias(api_body, template["Resources"][API_INVOKE_PERMISSION]["Properties"])
    api["MethodSettings"] = method_settings(stage, api_body)
    api_body["x-amazon-apigateway-gateway-responses"] = gateway_responses(SPA_DISTRIBUTION_ORIGIN)
    for scheme in api_body.get("securityDefinitions", {}).values():
        authorizer = scheme.get("x-amazon-apigateway-authorizer", {})
        if authorizer.get("type") == "cognito_user_pools":
            authorizer["providerARNs"] = [{"Fn::GetAtt": ["UserPool", "Arn"]}]

    if SENTINEL_POOL_ARN in json.dumps(template):
        raise PackagingError("the packaging stand-in for the user pool ARN survived into the template")
    return template


def wire_websocket_api(template: dict[str, Any], stage: str) -> str:
    """The WebSocket stage's throttling and logging, the SPA's URL for it (output WebsocketUrl) and its origin in
    the SPA's Content-Security-Policy; returns the stage's name. Refuses a template without the API's three routes:
    the SPA and the realtime settings count on them."""
    resources = template["Resources"]
    if resources.get(WEBSOCKET_API, {}).get("Type") != "AWS::ApiGatewayV2::Api" or WEBSOCKET_STAGE not in resources:
        raise PackagingError("chalice package emitted no WebSocket API: app.py must keep its on_ws_* handlers")
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"]["Target"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    for route_key, function in WEBSOCKET_ROUTES.items():
        integration = {"Fn::Join": ["/", ["integrations", {"Ref": f"{function}APIIntegration"}]]}
        if routes.get(route_key) != integration or function not in resources:
            raise PackagingError(f"the WebSocket route {route_key} does not reach the function {function}")
    properties = resources[WEBSOCKET_STAGE]["Properties"]
    properties["DefaultRouteSettings"] = websocket_route_settings(stage)
    websocket_stage: str = properties["StageName"]
    template["Outputs"]["WebsocketUrl"] = {
        "Description": "The SPA's WebSocket endpoint for live status (config.json ws_url); `?token=<ID token>`",
        "Value": {"Fn::Sub": WEBSOCKET_URL.replace("{stage}", websocket_stage)},
    }
    pin_websocket_origin(resources)
    return websocket_stage


def pin_websocket_origin(resources: dict[str, Any]) -> None:
    """resources.yaml lets the SPA connect to any WebSocket API of the region (the `chalice deploy` path creates its
    own); here the stack's own API is known, so the SPA's CSP names that one only."""
    headers = resources["SpaResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    csp = headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    if "Websocket" not in csp[1]:
        raise PackagingError("the SPA's Content-Security-Policy has no Websocket origin to pin")
    csp[1]["Websocket"] = {"Fn::Sub": WEBSOCKET_ORIGIN}


def invoke_the_api_alias(api_body: dict[str, Any], permission: dict[str, Any]) -> None:
    """Point every API Gateway integration, and API Gateway's permission to invoke, at the API's alias."""
    for path, operations in api_body.get("paths", {}).items():
        for method, operation in operations.items():
            uri = operation.get("x-amazon-apigateway-integration", {}).get("uri", {})
            text = uri.get("Fn::Sub") if isinstance(uri, dict) else None
            if not isinstance(text, str) or _UNQUALIFIED_API not in text:
                raise PackagingError(f"{method.upper()} {path} does not integrate with the API function as expected")
            uri["Fn::Sub"] = [
                text.replace(_UNQUALIFIED_API, f"${{{_API_ALIAS_VARIABLE}}}"),
                {_API_ALIAS_VARIABLE: {"Ref": f"{API_FUNCTION}.Alias"}},
            ]
    if permission.get("FunctionName") != {"Ref": API_FUNCTION}:
        raise PackagingError(f"{API_INVOKE_PERMISSION} does not name the API function as expected")
    permission["FunctionName"] = {"Ref": f"{API_FUNCTION}.Alias"}


def method_setting_path(path: str) -> str:
    """A route's path as a stage method setting names it: every "/" encoded as "~1", after a leading "/"."""
    return "/" + path.replace("/", "~1")


def method_settings(stage: str, api_body: dict[str, Any]) -> list[dict[str, Any]]:
    """The stage default, then each public route's own lower limits. A public route missing from the API is an
    error: renaming it must not leave its replacement on the default limits without anyone noticing."""
    rate, burst = THROTTLING[stage]
    settings = [{"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst}]
    for (path, method), limits in PUBLIC_ROUTE_THROTTLING.items():
        if method.lower() not in api_body.get("paths", {}).get(path, {}):
            raise PackagingError(f"the throttled public route {method} {path} is not in the API (app.py)")
        route_rate, route_burst = limits[stage]
        settings.append(
            {
                "ResourcePath": method_setting_path(path),
                "HttpMethod": method,
                "ThrottlingRateLimit": route_rate,
                "ThrottlingBurstLimit": route_burst,
            }
        )
    return settings


_WHEEL_TAG = re.compile(r"^Tag:\s*(\S+)$", re.MULTILINE)


def host_built_wheels(zip_path: Path, architecture: str = WHEEL_ARCHITECTURE) -> list[str]:
    """Distributions in the zip whose wheel does not load on the functions' machine: built on this host
    (linux_x86_64), or manylinux for another architecture. Pure-Python wheels (`-any`) fit everywhere."""
    offenders = []
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            if not name.endswith(".dist-info/WHEEL"):
                continue
            tags = _WHEEL_TAG.findall(archive.read(name).decode("utf-8", "replace"))
            fits = any(tag.endswith("-any") or ("manylinux" in tag and architecture in tag) for tag in tags)
            if not fits:
                offenders.append(f"{name.split('/')[0]} ({', '.join(tags) or 'no tags'})")
    return offenders


# Shared libraries and Python extension modules, however they are named (`_imaging.cpython-312-...so`, `libx.so.1`).
_NATIVE_CODE = re.compile(r"\.so(\.[0-9]+)*$|\.pyd$|\.dylib$")


def native_code(zip_path: Path) -> list[str]:
    """Native code in the zip. deployment.zip must have none: Chalice picks its wheels by its own architecture
    setting, not the one set here, and a library for the wrong machine only fails when Lambda imports it."""
    with zipfile.ZipFile(zip_path) as archive:
        return [name for name in archive.namelist() if _NATIVE_CODE.search(name)]


_ELF_MACHINES = {62: "x86_64", 183: "aarch64"}  # e_machine (EM_X86_64, EM_AARCH64)


def elf_machines(zip_path: Path) -> dict[str, str]:
    """{member: the machine its ELF header names} for every native library in the zip."""
    found = {}
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            if _NATIVE_CODE.search(name):
                with archive.open(name) as member:
                    header = member.read(20)
                if header[:4] == b"\x7fELF":
                    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
                    found[name] = _ELF_MACHINES.get(machine, f"e_machine {machine}")
                else:
                    found[name] = "not ELF"
    return found


def check_deployment_zip(zip_path: Path) -> None:
    """Chalice's zip must load on the functions' architecture: no wheel for another machine, no native code."""
    offenders = host_built_wheels(zip_path)
    if offenders:
        raise PackagingError(f"these wheels will not load on Lambda ({LAMBDA_ARCHITECTURE}): " + "; ".join(offenders))
    native = native_code(zip_path)
    if native:
        raise PackagingError(
            f"deployment.zip holds native code, which may not match the functions' {LAMBDA_ARCHITECTURE}: move it to "
            "the image layer or drop it from requirements.txt: " + "; ".join(native)
        )


def _zip_with_bytecode(root: Path, zip_path: Path) -> int:
    """Zip `root` with unchecked-hash .pyc files next to the sources (Lambda's files are read-only and never
    change, so the interpreter need not stat sources to validate them). Returns the number of .pyc files.
    The paths recorded in the bytecode are relative to `root`, not the scratch folder it sits in, so the same sources
    always give the same bytes (the import system records the real path when it loads a module anyway)."""
    compileall.compile_dir(
        root,
        quiet=2,
        workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        stripdir=str(root),
    )
    added = 0
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root).as_posix())
                added += path.suffix == ".pyc"
    return added


def add_bytecode(zip_path: Path) -> int:
    """Rewrite Chalice's zip with bytecode added; app.py and chalicelib/ must all compile."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "pkg"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(root)
        rebuilt = zip_path.with_suffix(".tmp")
        added = _zip_with_bytecode(root, rebuilt)
        for must_compile in (root / "app.py", *root.glob("chalicelib/**/*.py")):
            if not list(must_compile.parent.glob(f"__pycache__/{must_compile.stem}.*.pyc")):
                raise PackagingError(f"{must_compile.relative_to(root)} did not compile")
        rebuilt.replace(zip_path)
        return added


def build_image_layer(layer_zip: Path) -> Path:
    """The worker's image libraries as a Lambda layer (python/...), from wheels for Lambda's platform only."""
    with tempfile.TemporaryDirectory() as scratch:
        wheels, root = Path(scratch) / "wheels", Path(scratch) / "layer"
        platforms = [argument for platform in LAMBDA_PLATFORMS for argument in ("--platform", platform)]
        result = subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", *platforms,
             "--python-version", LAMBDA_PYTHON, "--implementation", "cp",
             "-r", str(WORKER_REQUIREMENTS), "-d", str(wheels)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise PackagingError(f"could not fetch the worker's wheels for Lambda:\n{result.stderr}")
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(root / "python")
        layer_zip.parent.mkdir(parents=True, exist_ok=True)
        _zip_with_bytecode(root, layer_zip)
    offenders = host_built_wheels(layer_zip)
    offenders += [
        f"{name} ({machine})" for name, machine in elf_machines(layer_zip).items() if machine != WHEEL_ARCHITECTURE
    ]
    if offenders:
        raise PackagingError("the image layer holds wheels that will not load on Lambda: " + "; ".join(offenders))
    return layer_zip


def package(stage: str, out_dir: Path) -> Path:
    if stage not in STAGES:
        raise PackagingError(f"stage must be one of {', '.join(STAGES)}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    render_policies()
    run_chalice_package(stage, out_dir)
    chalice_template = json.loads((out_dir / "sam.json").read_text())
    template = merge_and_wire(chalice_template, load_resources_template(), stage)
    zip_path = out_dir / "deployment.zip"
    check_deployment_zip(zip_path)
    add_bytecode(zip_path)
    build_image_layer(out_dir / "image-layer.zip")
    (out_dir / "sam.json").unlink()
    template_path = out_dir / "template.json"
    template_path.write_text(json.dumps(template, indent=2) + "\n")
    return template_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=STAGES, help="the stage to package (required unless --layer-only)")
    parser.add_argument("--out", type=Path, help="output folder (default build/<stage>)")
    parser.add_argument("--layer-only", action="store_true", help="only build build/image-layer.zip")
    args = parser.parse_args(argv)
    try:
        if args.layer_only:
            print(f"wrote {build_image_layer(args.out or PROJECT_DIR / 'build' / 'image-layer.zip')}")
            return 0
        if args.stage is None:
            parser.error("--stage is required")
        out_dir = args.out or PROJECT_DIR / "build" / args.stage
        template = package(args.stage, out_dir)
    except PackagingError as e:
        print(f"infra.package: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {template} and {template.with_name('deployment.zip')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
