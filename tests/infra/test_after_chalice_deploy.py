"""The `chalice deploy` path's after-deploy step (infra/after_chalice_deploy.py) on moto (in-process mock_aws).

The stage is set up as `chalice deploy` leaves it: Chalice's own packager builds the package under the name it
gives it in .chalice/deployments, the three functions run that package, the REST API has app.py's routes with
Lambda proxy integrations and an `api` stage, and .chalice/deployed/dev.json is shaped like Chalice's record.
moto cannot run the functions or serve the API, so these tests check the configuration the step leaves, not
that API Gateway answers with it.
"""

from __future__ import annotations

import io
import json
import py_compile
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from app import app as chalice_app
from infra import after_chalice_deploy
from infra.after_chalice_deploy import AfterDeployError, code_sha256, main, run
from infra.package import (
    GATEWAY_RESPONSES,
    PUBLIC_ROUTE_THROTTLING,
    THROTTLING,
    PackagingError,
    add_bytecode,
    gateway_responses,
    method_setting_path,
)
from tests.conftest import PROJECT_DIR

# Not the environment's default region (conftest's): the step must act where Chalice deployed, as its ARNs say.
REGION = "eu-west-2"
ACCOUNT = "123456789012"  # moto's default account
ORIGIN = "https://d111111abcdef8.cloudfront.net"
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
# Chalice's name for each function -> the function name `chalice deploy` gives it (chalice.deploy.appgraph).
FUNCTIONS = {
    "api_handler": "photosky-dev",
    "process_uploads": "photosky-dev-process_uploads",
    "release_abandoned_uploads": "photosky-dev-release_abandoned_uploads",
}
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
# What pip would unpack for a pure-Python requirement, and for one with an extension module built for arm64.
PURE_DEPENDENCY = {
    "tinydep/__init__.py": b"VALUE = 1\n",
    "tinydep-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nTag: py3-none-any\n",
}
NATIVE_DEPENDENCY = {
    "fastdep/__init__.py": b"from fastdep._speedups import run\n",
    "fastdep/_speedups.cpython-312-aarch64-linux-gnu.so": b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x03\x00\xb7\x00",
    "fastdep-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nTag: cp312-cp312-manylinux2014_aarch64\n",
}


class UnpackedDependencies:
    """Stands in for Chalice's pip-driven dependency builder (the packager's only use of the network)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self._files = files

    def build_site_packages(self, abi: str, requirements_filepath: str, target_directory: str) -> None:
        for name, content in self._files.items():
            path = Path(target_directory) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def build_chalice_package(project: Path, dependencies: dict[str, bytes]) -> Path:
    """The package `chalice deploy` builds, by Chalice's own packager, at the path Chalice caches it under."""
    from chalice.deploy.packager import LambdaDeploymentPackager
    from chalice.utils import UI, OSUtils

    packager = LambdaDeploymentPackager(OSUtils(), UnpackedDependencies(dependencies), UI(), architecture="arm64")
    return Path(packager.create_deployment_package(str(project), RUNTIME))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project, configured as infra.configure_stage leaves the dev stage."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "chalicelib", root / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(PROJECT_DIR / "app.py", root / "app.py")
    shutil.copyfile(PROJECT_DIR / "requirements.txt", root / "requirements.txt")
    (root / ".chalice").mkdir()
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    config["stages"]["dev"]["lambda_architecture"] = "arm64"
    config["stages"]["dev"]["environment_variables"]["PHOTOSKY_ALLOWED_ORIGINS"] = f"{ORIGIN},http://localhost:5173"
    (root / ".chalice" / "config.json").write_text(json.dumps(config, indent=2))
    # A developer's working tree has bytecode of its own (timestamp-checked), and Chalice packages it too.
    py_compile.compile(str(root / "chalicelib" / "errors.py"))
    return root


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def create_rest_api(api_handler_arn: str) -> str:
    """app.py's routes, each a Lambda proxy integration of the API handler, deployed to the `api` stage."""
    apigateway = client("apigateway")
    api_id: str = apigateway.create_rest_api(name="photosky", endpointConfiguration={"types": ["EDGE"]})["id"]
    resource_ids = {"/": apigateway.get_resources(restApiId=api_id)["items"][0]["id"]}
    uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{api_handler_arn}/invocations"
    for path, methods in sorted(chalice_app.routes.items()):
        parent = "/"
        for part in path.strip("/").split("/") if path != "/" else []:
            child = parent.rstrip("/") + "/" + part
            if child not in resource_ids:
                created = apigateway.create_resource(restApiId=api_id, parentId=resource_ids[parent], pathPart=part)
                resource_ids[child] = created["id"]
            parent = child
        for method in methods:
            options = {"restApiId": api_id, "resourceId": resource_ids[path], "httpMethod": method}
            apigateway.put_method(**options, authorizationType="NONE")
            apigateway.put_integration(**options, type="AWS_PROXY", integrationHttpMethod="POST", uri=uri)
    apigateway.create_deployment(restApiId=api_id, stageName="api")
    return api_id


def deploy_like_chalice(project: Path, code: bytes, runtime: str = RUNTIME) -> str:
    """The stage as `chalice deploy --stage dev` leaves it, and its record; returns the REST API's id."""
    iam, lambda_client = client("iam"), client("lambda")
    resources: list[dict[str, Any]] = []
    arns = {}
    for name, function_name in FUNCTIONS.items():
        role = iam.create_role(RoleName=function_name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]
        resources.append(
            {"name": f"{name}_role", "resource_type": "iam_role", "role_arn": role["Arn"], "role_name": function_name}
        )
        created = lambda_client.create_function(
            FunctionName=function_name,
            Runtime=runtime,
            Role=role["Arn"],
            Handler="app.app" if name == "api_handler" else f"app.{name}",
            Code={"ZipFile": code},
            Architectures=["arm64"],
        )
        arns[name] = created["FunctionArn"]
        resources.append({"name": name, "resource_type": "lambda_function", "lambda_arn": arns[name]})
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:photosky-dev-uploads"
    resources += [
        {
            "name": "process_uploads-sqs-event-source",
            "resource_type": "sqs_event",
            "queue_arn": queue_arn,
            "event_uuid": "c1a5e7d2-0000-4000-8000-000000000001",
            "queue": "photosky-dev-uploads",
            "lambda_arn": arns["process_uploads"],
        },
        {
            "name": "release_abandoned_uploads-event",
            "resource_type": "cloudwatch_event",
            "rule_name": "photosky-dev-release_abandoned_uploads-event",
        },
    ]
    api_id = create_rest_api(arns["api_handler"])
    resources.append(
        {
            "name": "rest_api",
            "resource_type": "rest_api",
            "rest_api_id": api_id,
            "rest_api_url": f"https://{api_id}.execute-api.{REGION}.amazonaws.com/api/",
        }
    )
    record = {"resources": resources, "schema_version": "2.0", "backend": "api"}
    (project / ".chalice" / "deployed").mkdir(exist_ok=True)
    (project / ".chalice" / "deployed" / "dev.json").write_text(json.dumps(record, indent=2))
    return api_id


@pytest.fixture
def deployed(project: Path, aws: None) -> tuple[Path, str, Path]:
    """(project, REST API id, Chalice's package) right after `chalice deploy --stage dev`."""
    package = build_chalice_package(project, PURE_DEPENDENCY)
    return project, deploy_like_chalice(project, package.read_bytes()), package


def deployed_code(function_name: str) -> bytes:
    # Code.Location points at a bucket moto does not serve: read the code moto keeps.
    from moto.awslambda.models import lambda_backends

    code: bytes = lambda_backends[ACCOUNT][REGION].get_function(function_name).code_bytes
    return code


def stage_state(api_id: str) -> dict[str, Any]:
    """What the step sets: the stage's method settings, the gateway responses, every function's code."""
    apigateway = client("apigateway")
    responses = {r["responseType"]: r for r in apigateway.get_gateway_responses(restApiId=api_id)["items"]}
    codes = {
        name: client("lambda").get_function(FunctionName=name)["Configuration"]["CodeSha256"]
        for name in FUNCTIONS.values()
    }
    settings = apigateway.get_stage(restApiId=api_id, stageName="api")["methodSettings"]
    return {"settings": settings, "responses": responses, "codes": codes}


def assert_untouched(api_id: str) -> None:
    """The API as `chalice deploy` left it: no gateway responses, no method settings, its one deployment."""
    apigateway = client("apigateway")
    assert apigateway.get_gateway_responses(restApiId=api_id)["items"] == []
    assert apigateway.get_stage(restApiId=api_id, stageName="api")["methodSettings"] == {}
    assert len(apigateway.get_deployments(restApiId=api_id)["items"]) == 1


def entries(data: bytes) -> dict[str, int]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: info.CRC for info in archive.infolist()}


def test_the_stage_gets_the_single_stacks_gateway_responses_through_a_new_deployment(
    deployed: tuple[Path, str, Path],
) -> None:
    project, api_id, _ = deployed
    apigateway = client("apigateway")
    before = {d["id"] for d in apigateway.get_deployments(restApiId=api_id)["items"]}
    run("dev", project)
    responses = {r["responseType"]: r for r in apigateway.get_gateway_responses(restApiId=api_id)["items"]}
    assert set(responses) == set(GATEWAY_RESPONSES)
    # The single stack's responses, with the SPA's distribution (the first allowed origin) as the static origin.
    expected = gateway_responses(f"'{ORIGIN}'")
    for response_type, response in responses.items():
        assert response["responseParameters"] == expected[response_type]["responseParameters"], response_type
        assert response.get("responseTemplates") == expected[response_type].get("responseTemplates"), response_type
        status = expected[response_type].get("statusCode")
        assert response.get("statusCode") == (str(status) if status else None), response_type
    origin = responses["UNAUTHORIZED"]["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
    assert origin == f"'{ORIGIN}'"
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    assert json.loads(responses["THROTTLED"]["responseTemplates"]["application/json"])["Code"] == "TooManyRequestsError"
    # Gateway responses reach callers only through a deployment: the stage now serves a new one.
    (new,) = {d["id"] for d in apigateway.get_deployments(restApiId=api_id)["items"]} - before
    assert apigateway.get_stage(restApiId=api_id, stageName="api")["deploymentId"] == new


def test_the_stage_gets_the_single_stacks_throttling(deployed: tuple[Path, str, Path]) -> None:
    project, api_id, _ = deployed
    run("dev", project)
    settings = client("apigateway").get_stage(restApiId=api_id, stageName="api")["methodSettings"]
    limits = {key: (s["throttlingRateLimit"], s["throttlingBurstLimit"]) for key, s in settings.items()}
    expected = {"*/*": THROTTLING["dev"]}
    for (path, method), per_stage in PUBLIC_ROUTE_THROTTLING.items():
        expected[f"{method_setting_path(path)[1:]}/{method}"] = per_stage["dev"]
    assert limits == expected
    assert limits["~1public~1albums~1{token}~1unlock/POST"] == (2, 4)


def test_every_function_gets_bytecode_beside_the_same_sources(deployed: tuple[Path, str, Path]) -> None:
    project, _, package = deployed
    run("dev", project)
    chalice = entries(package.read_bytes())
    for function_name in FUNCTIONS.values():
        code = deployed_code(function_name)
        assert client("lambda").get_function(FunctionName=function_name)["Configuration"]["CodeSha256"] == (
            code_sha256(code)
        )
        new = entries(code)
        # The same sources (names and CRC-32s), dependencies included; only .pyc files are new.
        assert {n: c for n, c in new.items() if not n.endswith(".pyc")} == {
            n: c for n, c in chalice.items() if not n.endswith(".pyc")
        }
        sources = [n for n in new if n.endswith(".py")]
        assert {"app.py", "tinydep/__init__.py", "chalicelib/web.py"} <= set(sources)
        for source in sources:
            folder, _, stem = source.rpartition("/")
            compiled = f"{folder + '/' if folder else ''}__pycache__/{stem[:-3]}.{sys.implementation.cache_tag}.pyc"
            assert compiled in new, source
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            names = archive.namelist()
            assert len(names) == len(set(names))
            for name in names:
                if name.endswith(".pyc"):
                    # PEP 552 flags: hash-based (bit 0), not checked against the source (bit 1): unchecked-hash.
                    assert archive.read(name)[4:8] == b"\x01\x00\x00\x00", name
    # The working tree's own timestamp bytecode came along in Chalice's package, and was replaced.
    stale = f"chalicelib/__pycache__/errors.{sys.implementation.cache_tag}.pyc"
    with zipfile.ZipFile(package) as archive:
        assert archive.read(stale)[4:8] == b"\x00\x00\x00\x00"


def test_running_twice_leaves_the_same_state(
    deployed: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    project, api_id, _ = deployed
    run("dev", project)
    first = stage_state(api_id)
    run("dev", project)
    assert stage_state(api_id) == first
    assert capsys.readouterr().out.count("already has this bytecode") == len(FUNCTIONS)


def test_each_step_says_what_it_did(deployed: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    project, api_id, package = deployed
    assert main(["--stage", "dev", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    responses = ", ".join(GATEWAY_RESPONSES)
    assert f"gateway responses: {responses} on REST API {api_id}, allowing {ORIGIN}; deployed to stage api" in out
    assert (
        "stage throttling: stage api: every method 20/s (burst 40); GET /public/albums/{token} 10/s (burst 20); "
        "POST /public/albums/{token}/unlock 2/s (burst 4)\n"
    ) in out
    for name in FUNCTIONS:
        assert f"bytecode: {name}: updated (" in out
    assert package.name in out


def test_a_stage_without_a_deploy_record_is_refused(project: Path) -> None:
    with pytest.raises(AfterDeployError, match=r"run chalice deploy --stage dev first"):
        run("dev", project)


@pytest.mark.parametrize("stage", ["staging", "local"])
def test_a_stage_without_the_single_stacks_limits_is_refused(project: Path, stage: str) -> None:
    with pytest.raises(AfterDeployError, match=rf"stage must be one of dev, prod .*'{stage}'"):
        run(stage, project)


def test_a_record_without_a_rest_api_is_refused(deployed: tuple[Path, str, Path]) -> None:
    project, _, _ = deployed
    path = project / ".chalice" / "deployed" / "dev.json"
    record = json.loads(path.read_text())
    record["resources"] = [r for r in record["resources"] if r["resource_type"] != "rest_api"]
    path.write_text(json.dumps(record))
    with pytest.raises(AfterDeployError, match="records no REST API"):
        run("dev", project)


API_RECORD = {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "a1", "rest_api_url": "https://a1/api/"}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("{", "is not Chalice's record of a deploy"),
        ("[]", "is not Chalice's record of a deploy"),
        ({"resources": "rest_api"}, "is not Chalice's record of a deploy"),
        ({"resources": ["rest_api", API_RECORD]}, "records no REST API or no function"),
        (
            {"resources": [API_RECORD, {"name": "api_handler", "resource_type": "lambda_function"}]},
            "'None' is not a function's ARN",
        ),
        (
            {
                "resources": [
                    API_RECORD,
                    *(
                        {"name": name, "resource_type": "lambda_function", "lambda_arn": arn}
                        for name, arn in [
                            ("a", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:a"),
                            ("b", f"arn:aws:lambda:eu-west-2:{ACCOUNT}:function:b"),
                        ]
                    ),
                ]
            },
            "functions in several regions: eu-west-1, eu-west-2",
        ),
    ],
)
def test_a_record_that_is_not_chalices_is_refused(project: Path, record: str | dict[str, Any], message: str) -> None:
    (project / ".chalice" / "deployed").mkdir()
    text = record if isinstance(record, str) else json.dumps(record)
    (project / ".chalice" / "deployed" / "dev.json").write_text(text)
    with pytest.raises(AfterDeployError, match=message):
        run("dev", project)


def test_a_stage_missing_from_chalices_config_is_refused(deployed: tuple[Path, str, Path]) -> None:
    project, _, _ = deployed
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    del config["stages"]["dev"]
    path.write_text(json.dumps(config))
    with pytest.raises(AfterDeployError, match="stage dev is not in"):
        run("dev", project)


@pytest.mark.parametrize(("origins", "message"), [(None, "run python -m infra.configure_stage"), ("'*'", "origin")])
def test_a_stage_without_the_spas_origin_is_refused(
    deployed: tuple[Path, str, Path], origins: str | None, message: str
) -> None:
    project, _, _ = deployed
    path = project / ".chalice" / "config.json"
    config = json.loads(path.read_text())
    environment = config["stages"]["dev"]["environment_variables"]
    del environment["PHOTOSKY_ALLOWED_ORIGINS"]
    if origins is not None:
        environment["PHOTOSKY_ALLOWED_ORIGINS"] = origins
    path.write_text(json.dumps(config))
    with pytest.raises(AfterDeployError, match=message):
        run("dev", project)


def test_a_public_route_missing_from_the_deployed_api_stops_the_step_before_any_change(
    deployed: tuple[Path, str, Path],
) -> None:
    project, api_id, _ = deployed
    apigateway = client("apigateway")
    (unlock,) = [
        r for r in apigateway.get_resources(restApiId=api_id)["items"] if r["path"] == "/public/albums/{token}/unlock"
    ]
    apigateway.delete_resource(restApiId=api_id, resourceId=unlock["id"])
    with pytest.raises(PackagingError, match=r"POST /public/albums/\{token\}/unlock"):
        run("dev", project)
    assert_untouched(api_id)


def test_a_checkout_changed_since_the_deploy_is_refused(deployed: tuple[Path, str, Path]) -> None:
    # Chalice names its package after the sources: edited ones name a package nobody deployed.
    project, _, _ = deployed
    with (project / "app.py").open("a") as app_file:
        app_file.write("\n# edited after the deploy\n")
    with pytest.raises(AfterDeployError, match="no deployment package for this checkout"):
        run("dev", project)


def test_functions_not_running_chalices_package_are_left_alone(project: Path, aws: None) -> None:
    package = build_chalice_package(project, PURE_DEPENDENCY)
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("app.py", "app = None\n")
    api_id = deploy_like_chalice(project, other.getvalue())
    with pytest.raises(
        AfterDeployError, match=re.escape(f"does not run Chalice's package for this checkout ({package.name})")
    ):
        run("dev", project)
    assert deployed_code("photosky-dev") == other.getvalue()
    assert_untouched(api_id)


def test_a_function_on_another_runtime_is_refused(project: Path, aws: None) -> None:
    package = build_chalice_package(project, PURE_DEPENDENCY)
    api_id = deploy_like_chalice(project, package.read_bytes(), runtime="python3.11")
    with pytest.raises(AfterDeployError, match=f"runs python3.11, but this interpreter compiles for {RUNTIME}"):
        run("dev", project)
    assert_untouched(api_id)


def test_native_code_is_refused_before_anything_changes(project: Path, aws: None) -> None:
    package = build_chalice_package(project, PURE_DEPENDENCY | NATIVE_DEPENDENCY)
    api_id = deploy_like_chalice(project, package.read_bytes())
    with pytest.raises(PackagingError, match="fastdep/_speedups"):
        run("dev", project)
    assert_untouched(api_id)
    assert deployed_code("photosky-dev") == package.read_bytes()


def test_a_bytecode_step_that_touches_a_source_is_refused(
    deployed: tuple[Path, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _, package = deployed

    def add_bytecode_and_touch_app(zip_path: Path) -> int:
        added = add_bytecode(zip_path)
        with zipfile.ZipFile(zip_path) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
        files["app.py"] += b"\n"
        with zipfile.ZipFile(zip_path, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
        return added

    monkeypatch.setattr(after_chalice_deploy, "add_bytecode", add_bytecode_and_touch_app)
    with pytest.raises(
        AfterDeployError, match=r"the bytecode step changed entries of Chalice's package other than bytecode: app\.py$"
    ):
        run("dev", project)
    assert deployed_code("photosky-dev") == package.read_bytes()


def test_an_update_overtaken_by_another_deploy_is_reported(deployed: tuple[Path, str, Path]) -> None:
    project, _, package = deployed
    session = boto3.session.Session()

    def another_deploy_wins(params: dict[str, Any], **_: Any) -> None:
        params["ZipFile"] = package.read_bytes()

    session.events.register("provide-client-params.lambda.UpdateFunctionCode", another_deploy_wins)
    with pytest.raises(AfterDeployError, match=r"reports CodeSha256 .* after the update, not the package's"):
        run("dev", project, session)


def test_errors_are_one_line_and_exit_1(deployed: tuple[Path, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    project, api_id, _ = deployed
    client("apigateway").delete_rest_api(restApiId=api_id)
    assert main(["--stage", "dev", "--project-dir", str(project)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("infra.after_chalice_deploy: error: An error occurred (NotFoundException)")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert main(["--stage", "dev", "--project-dir", str(project / "elsewhere")]) == 1
    assert "run chalice deploy --stage dev first" in capsys.readouterr().err
