"""Does the CDK stack declare what the single stack (`infra.package`) declares? One check per guarantee.

Each check takes the single stack's template and the CDK's and returns the differences it finds (empty means the
same), like infra/checks.py, so the tests can prove each one fails on a difference made on purpose.

Identity is the logical id: Chalice's construct includes the template with `preserve_logical_ids`, so a resource
keeps its id. What the CDK adds, and nothing else may differ: the parameter `BootstrapVersion` and the rule
`CheckBootstrapVersion` (its bootstrap stack's version check), the code locations (CDK assets in the bootstrap
bucket instead of local zips: compared by content, see `code_differences`), and metadata keys under `aws:cdk:` and
`aws:asset:`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.cdk.include import CODE_PROPERTIES
from infra.package import LAYER_FUNCTIONS

CDK_PARAMETERS = {"BootstrapVersion"}
CDK_RULES = {"CheckBootstrapVersion"}
# User data that must outlive the stack: a `cdk destroy` leaves them, as a delete of the single stack does.
RETAINED = ("PhotoTable", "PhotoBucket", "UserPool")
_FUNCTION = "AWS::Serverless::Function"

Template = dict[str, Any]


def _resources(template: Template) -> dict[str, Any]:
    resources: dict[str, Any] = template.get("Resources", {})
    return resources


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _differences(what: str, single: dict[str, Any], cdk: dict[str, Any]) -> list[str]:
    problems = [f"{what} {key}: only in the single stack" for key in sorted(set(single) - set(cdk))]
    problems += [f"{what} {key}: only in the CDK stack" for key in sorted(set(cdk) - set(single))]
    problems += [
        f"{what} {key}: {_canonical(single[key])} in the single stack, {_canonical(cdk[key])} in the CDK stack"
        for key in sorted(set(single) & set(cdk))
        if _canonical(single[key]) != _canonical(cdk[key])
    ]
    return problems


def resource_differences(single: Template, cdk: Template) -> list[str]:
    """The same logical ids, each of the same type."""
    return _differences(
        "resource",
        {name: r.get("Type") for name, r in _resources(single).items()},
        {name: r.get("Type") for name, r in _resources(cdk).items()},
    )


def _statements(template: Template, role: str) -> list[str]:
    """A role's statements, each in a canonical form (actions and resources sorted), sorted."""
    found = []
    for policy in _resources(template).get(role, {}).get("Properties", {}).get("Policies", []):
        statements = policy.get("PolicyDocument", {}).get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            normalized = dict(statement)
            for key in ("Action", "Resource", "NotAction", "NotResource"):
                if key in normalized:
                    values = normalized[key] if isinstance(normalized[key], list) else [normalized[key]]
                    normalized[key] = sorted(values, key=_canonical)
            found.append(_canonical(normalized))
    return sorted(found)


def _permissions(template: Template) -> dict[str, Any]:
    """{function: its role's trust policy, managed policies and statements, and any policies SAM would add}."""
    permissions = {}
    for name, resource in _resources(template).items():
        if resource.get("Type") != _FUNCTION:
            continue
        properties = resource.get("Properties", {})
        role = properties.get("Role", {})
        role_id = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
        role_properties = _resources(template).get(role_id, {}).get("Properties", {}) if role_id else {}
        permissions[name] = {
            "role": role if role_id is None else role_id,
            "trust": role_properties.get("AssumeRolePolicyDocument"),
            "managed": sorted(role_properties.get("ManagedPolicyArns", []), key=_canonical),
            "statements": _statements(template, role_id) if role_id else [],
            "sam_policies": properties.get("Policies"),
        }
    return permissions


def permission_differences(single: Template, cdk: Template) -> list[str]:
    """Each function's IAM permissions: the same role, trust, actions and resources (order aside)."""
    return _differences("permissions of", _permissions(single), _permissions(cdk))


def retention_differences(single: Template, cdk: Template) -> list[str]:
    """Every resource's DeletionPolicy and UpdateReplacePolicy, and Retain on the user data in the CDK stack."""
    problems = _differences(
        "retention of",
        {n: [r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")] for n, r in _resources(single).items()},
        {n: [r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")] for n, r in _resources(cdk).items()},
    )
    for name in RETAINED:
        resource = _resources(cdk).get(name, {})
        if resource.get("DeletionPolicy") != "Retain" or resource.get("UpdateReplacePolicy") != "Retain":
            problems.append(f"{name} is not retained by the CDK stack")
    return problems


def _throttling(template: Template) -> dict[str, Any]:
    found = {}
    for name, resource in _resources(template).items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Api":
            found[name] = sorted(properties.get("MethodSettings", []), key=_canonical)
        elif resource.get("Type") == "AWS::ApiGatewayV2::Stage":
            found[name] = [properties.get("DefaultRouteSettings"), properties.get("RouteSettings")]
    return found


def throttling_differences(single: Template, cdk: Template) -> list[str]:
    """The REST stage's method settings and the WebSocket stage's route settings (limits and logging)."""
    return _differences("throttling of", _throttling(single), _throttling(cdk))


def _gateway_responses(template: Template) -> dict[str, Any]:
    return {
        name: resource.get("Properties", {}).get("DefinitionBody", {}).get("x-amazon-apigateway-gateway-responses")
        for name, resource in _resources(template).items()
        if resource.get("Type") == "AWS::Serverless::Api"
    }


def gateway_response_differences(single: Template, cdk: Template) -> list[str]:
    """API Gateway's own error responses (CORS headers, the 404 for unknown routes, the 429's Retry-After)."""
    return _differences("gateway responses of", _gateway_responses(single), _gateway_responses(cdk))


def layer_differences(single: Template, cdk: Template) -> list[str]:
    """Each function's layers; in the CDK stack, only the worker and the reconciler have one."""

    def layers(template: Template) -> dict[str, Any]:
        return {
            name: r.get("Properties", {}).get("Layers")
            for name, r in _resources(template).items()
            if r.get("Type") == _FUNCTION
        }

    problems = _differences("layers of", layers(single), layers(cdk))
    problems += [
        f"{name} has a layer in the CDK stack"
        for name, value in layers(cdk).items()
        if value and name not in LAYER_FUNCTIONS
    ]
    return problems


def _comparable(template: Template) -> Template:
    """The template without what the CDK adds or places elsewhere (module docstring)."""
    comparable: Template = json.loads(json.dumps(template))
    for section, added in (("Parameters", CDK_PARAMETERS), ("Rules", CDK_RULES)):
        for name in added:
            comparable.get(section, {}).pop(name, None)
    for resource in _resources(comparable).values():
        code = CODE_PROPERTIES.get(resource.get("Type", ""))
        if code and code in resource.get("Properties", {}):
            resource["Properties"][code] = "<code>"
        if "DependsOn" in resource:  # one id or a list of them, in any order: the same dependencies
            depends_on = resource["DependsOn"]
            resource["DependsOn"] = sorted(depends_on if isinstance(depends_on, list) else [depends_on])
        metadata = {
            k: v for k, v in resource.pop("Metadata", {}).items() if not k.startswith(("aws:cdk:", "aws:asset:"))
        }
        if metadata:
            resource["Metadata"] = metadata
    return comparable


def definition_differences(single: Template, cdk: Template) -> list[str]:
    """Everything else: every section and every resource's whole definition, but for what the CDK adds."""
    a, b = _comparable(single), _comparable(cdk)
    problems = _differences(
        "section", {k: v for k, v in a.items() if k != "Resources"}, {k: v for k, v in b.items() if k != "Resources"}
    )
    return problems + _differences("resource", _resources(a), _resources(b))


TEMPLATE_CHECKS: dict[str, Callable[[Template, Template], list[str]]] = {
    "resources": resource_differences,
    "permissions": permission_differences,
    "retention": retention_differences,
    "throttling": throttling_differences,
    "gateway responses": gateway_response_differences,
    "layers": layer_differences,
    "definitions": definition_differences,
}


# --- code: the zips each function and layer ships ----------------------------------------------------------------


def single_stack_code(template: Template, package_dir: Path) -> dict[str, Path]:
    """{function or layer: its zip} in infra.package's output (local paths next to template.json)."""
    return {
        name: package_dir / r["Properties"][CODE_PROPERTIES[r["Type"]]]
        for name, r in _resources(template).items()
        if r.get("Type") in CODE_PROPERTIES
    }


def cdk_stack_code(template: Template, assembly_dir: Path, stack: str) -> dict[str, Path]:
    """{function or layer: its zip} in a cloud assembly: the asset whose object key the code location names."""
    manifest = json.loads((assembly_dir / f"{stack}.assets.json").read_text())
    by_key = {
        destination["objectKey"]: assembly_dir / asset["source"]["path"]
        for asset in manifest.get("files", {}).values()
        for destination in asset["destinations"].values()
    }
    found = {}
    for name, resource in _resources(template).items():
        if resource.get("Type") in CODE_PROPERTIES:
            location = resource["Properties"][CODE_PROPERTIES[resource["Type"]]]
            key = location.get("Key") if isinstance(location, dict) else None
            found[name] = by_key.get(key, assembly_dir / f"<no asset for {_canonical(location)}>")
    return found


def _members(zip_path: Path) -> dict[str, int | None]:
    """{member: its CRC}; bytecode by name only (marshal output may differ between two compilations of a source)."""
    with zipfile.ZipFile(zip_path) as archive:
        return {i.filename: None if i.filename.endswith(".pyc") else i.CRC for i in archive.infolist()}


def _missing_bytecode(members: dict[str, int | None]) -> list[str]:
    """app.py and chalicelib's modules without their .pyc beside them (what infra.package adds)."""
    sources = [m for m in members if m == "app.py" or (m.startswith("chalicelib/") and m.endswith(".py"))]
    missing = []
    for source in sources:
        folder, _, file = source.rpartition("/")
        prefix = f"{folder}/__pycache__/{file[:-3]}." if folder else f"__pycache__/{file[:-3]}."
        if not any(m.startswith(prefix) and m.endswith(".pyc") for m in members):
            missing.append(source)
    return missing


def code_differences(single: dict[str, Path], cdk: dict[str, Path]) -> list[str]:
    """Each function and layer ships the same files, and the functions' code carries its bytecode."""
    problems = [f"code of {name}: only in the single stack" for name in sorted(set(single) - set(cdk))]
    problems += [f"code of {name}: only in the CDK stack" for name in sorted(set(cdk) - set(single))]
    for name in sorted(set(single) & set(cdk)):
        if not cdk[name].is_file():
            problems.append(f"code of {name}: {cdk[name].name} is not in the cloud assembly")
            continue
        ours, theirs = _members(single[name]), _members(cdk[name])
        if ours != theirs:
            changed = sorted(m for m in set(ours) | set(theirs) if ours.get(m, -1) != theirs.get(m, -1))
            problems.append(f"code of {name}: differs in {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}")
        missing = _missing_bytecode(theirs) if "app.py" in ours else []  # function code, not the layer
        if missing:
            problems.append(f"code of {name}: no bytecode for {', '.join(missing[:5])}")
    return problems
