"""Offline checks of a packaged template: what cfn-lint and the SAM transform find, and PhotoSky's own rules.

Each returns the problems it finds (empty means pass), so the tests can also prove each check fails on a
template broken on purpose.
"""

from __future__ import annotations

import copy
import json
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
