"""The single-stack deployment for dev and prod, built by `python -m infra.package` and checked offline:
cfn-lint on the template and on its SAM-transformed form, PhotoSky's own rules, and the Lambda zip itself."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra import checks
from infra.package import SENTINEL_POOL_ARN, STAGES, THROTTLING, host_built_wheels, package

Packaged = dict[str, tuple[dict[str, Any], Path]]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    built = {}
    for stage in STAGES:
        template_path = package(stage, tmp_path_factory.mktemp(stage) / "out")
        built[stage] = (json.loads(template_path.read_text()), template_path.with_name("deployment.zip"))
    return built


@pytest.mark.parametrize("stage", STAGES)
def test_the_template_passes_cfn_lint(packaged: Packaged, stage: str) -> None:
    assert checks.cfn_lint(packaged[stage][0]) == []


@pytest.mark.parametrize("stage", STAGES)
def test_the_sam_transformed_template_passes_cfn_lint(packaged: Packaged, stage: str) -> None:
    transformed = checks.sam_transform(packaged[stage][0], {"Stage": stage})
    assert "Transform" not in transformed
    assert checks.cfn_lint(transformed) == []


@pytest.mark.parametrize("stage", STAGES)
def test_every_route_but_health_requires_the_cognito_authorizer(packaged: Packaged, stage: str) -> None:
    template = packaged[stage][0]
    assert checks.unguarded_routes(template) == []
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    assert "security" not in body["paths"]["/health"]["get"]
    providers = body["securityDefinitions"]["PhotoSkyUsers"]["x-amazon-apigateway-authorizer"]["providerARNs"]
    assert providers == [{"Fn::GetAtt": ["UserPool", "Arn"]}]


@pytest.mark.parametrize("stage", STAGES)
def test_no_policy_grants_wildcards(packaged: Packaged, stage: str) -> None:
    assert checks.wildcard_grants(packaged[stage][0]) == []


def actions_of(template: dict[str, Any], role: str) -> set[str]:
    statements = [
        statement
        for policy in template["Resources"][role]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    return {action for statement in statements for action in statement["Action"]}


def test_each_function_has_its_own_role_with_only_what_it_uses(packaged: Packaged) -> None:
    template = packaged["dev"][0]
    roles = {
        name: template["Resources"][name]["Properties"]["Role"]["Fn::GetAtt"][0]
        for name in ("APIHandler", "ProcessUploads", "ReleaseAbandonedUploads")
    }
    assert len(set(roles.values())) == 3
    api, worker, reconciler = (actions_of(template, roles[name]) for name in roles)
    assert not any(action.startswith("sqs:") for action in api | reconciler)
    assert "sqs:ReceiveMessage" in worker
    assert {a for a in api | worker | reconciler if a.startswith("secretsmanager:")} == {
        "secretsmanager:GetSecretValue"
    }
    assert not any(action.startswith("secretsmanager:") for action in worker | reconciler)
    # Without ListBucket, S3 answers 403 instead of 404 for a missing object: the worker and the reconciler
    # would fail on an upload that never arrived instead of releasing it (moto cannot show this).
    assert "s3:ListBucket" in worker & reconciler
    assert "s3:ListBucket" not in api
    assert "dynamodb:Query" not in worker  # only the reconciler and the API query
    assert "dynamodb:BatchGetItem" not in worker | reconciler


def test_functions_are_wired_to_the_stacks_resources(packaged: Packaged) -> None:
    template = packaged["prod"][0]
    resources = template["Resources"]
    for name in ("APIHandler", "ProcessUploads", "ReleaseAbandonedUploads"):
        properties = resources[name]["Properties"]
        variables = properties["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == {"Ref": "PhotoTable"}
        assert variables["BUCKET_NAME"] == {"Ref": "PhotoBucket"}
        assert variables["COGNITO_USER_POOL_ARN"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
        assert variables["PHOTOSKY_CURSOR_SECRET_ARN"] == {"Ref": "CursorSecret"}
        assert "PHOTOSKY_CURSOR_SECRET" not in variables  # the key itself never sits in Lambda settings
        assert properties["Runtime"] == "python3.12"
    sqs_events = [e for e in resources["ProcessUploads"]["Properties"]["Events"].values() if e["Type"] == "SQS"]
    assert [e["Properties"]["Queue"] for e in sqs_events] == [{"Fn::GetAtt": ["UploadsQueue", "Arn"]}]
    assert template["Parameters"]["Stage"]["Default"] == "prod"
    assert SENTINEL_POOL_ARN not in json.dumps(template)


def test_memory_and_timeouts_follow_the_measurements(packaged: Packaged) -> None:
    resources = packaged["prod"][0]["Resources"]
    sized = {
        name: (resources[name]["Properties"]["MemorySize"], resources[name]["Properties"]["Timeout"])
        for name in ("APIHandler", "ProcessUploads", "ReleaseAbandonedUploads")
    }
    # docs/PERFORMANCE.md: at Chalice's default 128 MB a list request is billed ~3.6x longer than at 512 MB, for
    # about $0.10 a month more; 1536 MB gives the worker room for a 100 MP PNG. API Gateway gives up after 29 s.
    assert sized == {"APIHandler": (512, 30), "ProcessUploads": (1536, 60), "ReleaseAbandonedUploads": (1536, 300)}


@pytest.mark.parametrize("stage", STAGES)
def test_the_zip_carries_bytecode_and_no_host_built_wheel(packaged: Packaged, stage: str) -> None:
    zip_path = packaged[stage][1]
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert "app.py" in names
    assert any(name.startswith("__pycache__/app.cpython-312") for name in names)
    assert any(name.startswith("chalicelib/photos/__pycache__/") for name in names)
    assert not any(name.startswith(("devstack/", "tests/", "infra/")) for name in names)
    assert not any(name.startswith(("PIL/", "pillow_heif/")) for name in names)  # image code is the worker's layer
    assert host_built_wheels(zip_path) == []


def test_the_image_libraries_are_a_layer_for_the_worker_and_reconciler_only(packaged: Packaged) -> None:
    template, zip_path = packaged["dev"]
    layer_zip = zip_path.with_name("image-layer.zip")
    names = set(zipfile.ZipFile(layer_zip).namelist())
    assert "python/PIL/Image.py" in names
    assert any(name.startswith("python/PIL/__pycache__/Image.cpython-312") for name in names)
    assert any(name.startswith("python/pillow_heif/") for name in names)
    assert host_built_wheels(layer_zip) == []
    resources = template["Resources"]
    assert resources["ImageLibrariesLayer"]["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    layered = {name for name, r in resources.items() if "Layers" in r.get("Properties", {})}
    assert layered == {"ProcessUploads", "ReleaseAbandonedUploads"}
    assert resources["ProcessUploads"]["Properties"]["Layers"] == [{"Ref": "ImageLibrariesLayer"}]


# --- each check must be able to fail --------------------------------------------------------------------------------


def test_a_wheel_built_on_this_host_is_caught(tmp_path: Path) -> None:
    zip_path = tmp_path / "bad.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("pillow-13.0.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: cp312-cp312-linux_x86_64\n")
        archive.writestr("six-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
    assert host_built_wheels(zip_path) == ["pillow-13.0.0.dist-info (cp312-cp312-linux_x86_64)"]


def test_a_dangling_reference_fails_cfn_lint(packaged: Packaged) -> None:
    broken = copy.deepcopy(packaged["dev"][0])
    del broken["Resources"]["UploadsQueue"]
    assert any("UploadsQueue" in problem for problem in checks.cfn_lint(broken))


def test_a_wildcard_resource_is_caught(packaged: Packaged) -> None:
    broken = copy.deepcopy(packaged["dev"][0])
    role = broken["Resources"]["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    role.append({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"})
    assert checks.wildcard_grants(broken) == ["ApiHandlerRole: Resource '*' in " + str(role[-1])]


def test_a_route_without_the_authorizer_is_caught(packaged: Packaged) -> None:
    broken = copy.deepcopy(packaged["dev"][0])
    del broken["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]["/photos"]["get"]["security"]
    assert checks.unguarded_routes(broken) == ["GET /photos"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_stage_is_throttled_per_stage(packaged: Packaged, stage: str) -> None:
    settings = packaged[stage][0]["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert [(s["ResourcePath"], s["HttpMethod"]) for s in settings] == [("/*", "*")]
    assert (settings[0]["ThrottlingRateLimit"], settings[0]["ThrottlingBurstLimit"]) == THROTTLING[stage]


def test_gateway_errors_carry_cors_headers_and_unknown_routes_do_not_echo_the_token(packaged: Packaged) -> None:
    body = packaged["dev"][0]["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED", "MISSING_AUTHENTICATION_TOKEN", "THROTTLED"}
    for response in responses.values():
        origin = response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert origin == {"Fn::Sub": "'https://${SpaDistribution.DomainName}'"}
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["statusCode"] == 404
    assert "Authorization" not in missing["responseTemplates"]["application/json"]
    # Stage throttling answers like the API's own 429s: the error shape, and a Retry-After the SPA can read.
    throttled = responses["THROTTLED"]
    assert throttled["statusCode"] == 429
    assert json.loads(throttled["responseTemplates"]["application/json"])["Code"] == "TooManyRequestsError"
    assert throttled["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    assert throttled["responseParameters"]["gatewayresponse.header.Access-Control-Expose-Headers"] == "'Retry-After'"


def test_the_api_allows_cors_for_the_spa_distribution_and_the_extra_origins_only(packaged: Packaged) -> None:
    resources = packaged["dev"][0]["Resources"]
    origins = resources["APIHandler"]["Properties"]["Environment"]["Variables"]["PHOTOSKY_ALLOWED_ORIGINS"]
    condition, with_extra, distribution_only = origins["Fn::If"]
    assert condition == "HasSpaOrigins"
    assert with_extra["Fn::Sub"][0] == "https://${SpaDomain},${Extra}"
    assert with_extra["Fn::Sub"][1]["Extra"] == {"Fn::Join": [",", {"Ref": "SpaOrigins"}]}
    assert distribution_only == {"Fn::Sub": "https://${SpaDistribution.DomainName}"}
    for worker in ("ProcessUploads", "ReleaseAbandonedUploads"):
        assert "PHOTOSKY_ALLOWED_ORIGINS" not in resources[worker]["Properties"]["Environment"]["Variables"]
    # Preflights reach the Lambda (no API Gateway mock that could not know the distribution's domain), unguarded.
    paths = resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for path, operations in paths.items():
        if path != "/health":
            assert operations["options"]["x-amazon-apigateway-integration"]["type"] == "aws_proxy", path
            assert "security" not in operations["options"], path
