"""Offline checks of a packaged template: what cfn-lint and the SAM transform find, and PhotoSky's own rules.

Each returns the problems it finds (empty means pass), so the tests can also prove each check fails on a
template broken on purpose.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

# Routes anyone may call without a token: the health check, and a share link's album page and password unlock.
PUBLIC_ROUTES = {("/health", "get"), ("/public/albums/{token}", "get"), ("/public/albums/{token}/unlock", "post")}
# Public routes that may stay on the stage's default throttling: the health check does no work and reads nothing.
DEFAULT_THROTTLED_PUBLIC_ROUTES = {("/health", "get")}
# Pseudo parameters the SAM translator needs to resolve Fn::Sub in event sources and policies offline.
_OFFLINE_PARAMETERS = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}


class _NoManagedPolicies:
    """The templates use inline policies only; the translator must never need to look managed ones up in IAM."""

    def load(self) -> dict[str, str]:
        return {}


def cfn_lint(template: dict[str, Any], *, region: str = "us-east-1") -> list[str]:
    """cfn-lint's errors and warnings, one line each."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), regions=[region], config=ManualArgs(regions=[region]))
    return [f"{m.rule.id} {'/'.join(str(p) for p in m.path or [])}: {m.message}" for m in matches]


def sam_transform(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The plain CloudFormation the SAM transform would produce (it catches cycles cfn-lint misses)."""
    from samtranslator.translator.transform import transform

    uploaded = copy.deepcopy(template)
    for resource in uploaded["Resources"].values():
        # What `aws cloudformation package` does before a deploy: the local zip becomes an S3 object.
        for kind, uri in (("AWS::Serverless::Function", "CodeUri"), ("AWS::Serverless::LayerVersion", "ContentUri")):
            if resource["Type"] == kind and not str(resource["Properties"][uri]).startswith("s3://"):
                resource["Properties"][uri] = f"s3://photosky-artifacts/{uri}.zip"
    transformed: dict[str, Any] = transform(
        uploaded,
        {**_OFFLINE_PARAMETERS, **parameters},
        _NoManagedPolicies(),
    )
    return transformed


def _routes_without_the_authorizer(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, method) of every API operation the Cognito authorizer does not guard, CORS preflights aside (the
    Lambda answers those with permission or a 403, never data)."""
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    cognito = {
        name
        for name, scheme in body.get("securityDefinitions", {}).items()
        if scheme.get("x-amazon-apigateway-authorizer", {}).get("type") == "cognito_user_pools"
    }
    found = []
    for path, operations in body.get("paths", {}).items():
        for method, operation in operations.items():
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            if method != "options" and not schemes & cognito:
                found.append((path, method))
    return found


def unguarded_routes(template: dict[str, Any]) -> list[str]:
    """API operations without the Cognito authorizer, other than the public ones."""
    return [
        f"{method.upper()} {path}"
        for path, method in _routes_without_the_authorizer(template)
        if (path, method) not in PUBLIC_ROUTES
    ]


def public_routes_without_their_own_throttle(template: dict[str, Any]) -> list[str]:
    """Operations anyone may call without a token (the health check aside) that lack a stage method setting of
    their own with a rate and a burst below the stage default's."""
    from infra.package import method_setting_path

    settings = template["Resources"]["RestAPI"]["Properties"].get("MethodSettings", [])
    by_method = {(s["ResourcePath"], s["HttpMethod"].upper()): s for s in settings}
    default = by_method.get(("/*", "*"))
    problems = []
    for path, method in _routes_without_the_authorizer(template):
        if (path, method) in DEFAULT_THROTTLED_PUBLIC_ROUTES:
            continue
        own = by_method.get((method_setting_path(path), method.upper()))
        if own is None:
            problems.append(f"{method.upper()} {path}: no throttling of its own")
        elif default is not None and not (
            own["ThrottlingRateLimit"] < default["ThrottlingRateLimit"]
            and own["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"]
        ):
            problems.append(f"{method.upper()} {path}: throttled no lower than the stage default")
    return problems


# Resource types whose properties hold IAM policy documents (a Cognito user pool's `Policies` is not IAM).
_POLICY_HOLDERS = {
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
}


def _statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in _POLICY_HOLDERS:
            continue
        properties = resource.get("Properties", {})
        documents = [policy.get("PolicyDocument", {}) for policy in properties.get("Policies", [])]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            statements = document.get("Statement", [])
            for statement in statements if isinstance(statements, list) else [statements]:
                found.append((logical_id, statement))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_grants(template: dict[str, Any]) -> list[str]:
    """Allow statements whose Resource or Action is a bare `*` (or `service:*`), and `*` principals."""
    problems = []
    for logical_id, statement in _statements(template):
        if statement.get("Effect") != "Allow":
            continue
        for resource in _as_list(statement.get("Resource", [])):
            if resource == "*" or (isinstance(resource, dict) and resource.get("Fn::Sub") == "*"):
                problems.append(f"{logical_id}: Resource '*' in {statement.get('Sid') or statement}")
        for action in _as_list(statement.get("Action", [])):
            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                problems.append(f"{logical_id}: Action {action!r}")
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS", []))):
            problems.append(f"{logical_id}: Principal '*'")
    return problems


def websocket_stage_logging(template: dict[str, Any]) -> list[str]:
    """WebSocket stages that could write a connect's query string, which holds the user's ID token, to CloudWatch:
    access logs, execution logs at any level, or data traces, whether for every route or for one. Execution logging
    must be OFF explicitly, not left to a default."""
    problems = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::ApiGatewayV2::Stage":
            continue
        properties = resource.get("Properties", {})
        if "AccessLogSettings" in properties:
            problems.append(f"{logical_id}: access logging is on")
        default = properties.get("DefaultRouteSettings", {})
        if default.get("LoggingLevel") != "OFF":
            problems.append(f"{logical_id}: execution logging is not OFF for every route")
        if default.get("DataTraceEnabled") is not False:
            problems.append(f"{logical_id}: data tracing is not off for every route")
        for route_key, settings in sorted(properties.get("RouteSettings", {}).items()):
            if settings.get("LoggingLevel", "OFF") != "OFF" or settings.get("DataTraceEnabled", False) is not False:
                problems.append(f"{logical_id}: route {route_key} logs")
    return problems


_MANAGE_CONNECTIONS = "execute-api:ManageConnections"


def _connections_arn(template: dict[str, Any]) -> re.Pattern[str]:
    """The only resources execute-api may be granted on: the stack's own WebSocket API's @connections, on the stage
    Chalice gives it, one HTTP method each (the management API's IAM resources are the REST ones)."""
    stage = template["Resources"]["WebsocketAPIStage"]["Properties"]["StageName"]
    return re.compile(
        r"^arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{WebsocketAPI\}/"
        + re.escape(stage)
        + r"/(POST|DELETE|GET)/@connections/\*$"
    )


def _connections_grants(template: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[Any]]]:
    """(role, statement, resources) of every statement granting an execute-api action."""
    found = []
    for logical_id, statement in _statements(template):
        if any(str(a).startswith("execute-api:") for a in _as_list(statement.get("Action", []))):
            found.append((logical_id, statement, _as_list(statement.get("Resource", []))))
    return found


def _sub_text(resource: Any) -> str:
    text = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
    return text if isinstance(text, str) else json.dumps(resource)


def loose_connections_grants(template: dict[str, Any]) -> list[str]:
    """execute-api grants other than an unconditional, unshared ManageConnections on exactly
    `arn:<partition>:execute-api:<region>:<account>:<WebsocketAPI's id>/<its stage>/<METHOD>/@connections/*`."""
    exact = _connections_arn(template)
    problems = []
    for logical_id, statement, resources in _connections_grants(template):
        name = f"{logical_id}: {statement.get('Sid') or statement}"
        if statement.get("Effect") != "Allow" or "Condition" in statement:
            problems.append(f"{name}: not a plain Allow")
        if _as_list(statement.get("Action")) != [_MANAGE_CONNECTIONS]:
            problems.append(f"{name}: grants {statement.get('Action')}, not {_MANAGE_CONNECTIONS} alone")
        problems += [f"{name}: on {_sub_text(r)}" for r in resources if not exact.match(_sub_text(r))]
    return problems


def connections_methods(template: dict[str, Any]) -> dict[str, set[str]]:
    """{role: the @connections methods (POST, DELETE, GET) it may call}, from the grants loose_connections_grants
    accepts."""
    exact = _connections_arn(template)
    methods: dict[str, set[str]] = {}
    for logical_id, _, resources in _connections_grants(template):
        for resource in resources:
            match = exact.match(_sub_text(resource))
            if match:
                methods.setdefault(logical_id, set()).add(match.group(1))
    return methods
