"""`python -m infra.after_chalice_deploy --stage dev`: what the single stack has and `chalice deploy` does not.

Run right after `chalice deploy --stage <stage>` (`make chalice-deploy STAGE=dev` runs both). Reads what Chalice
recorded in .chalice/deployed/<stage>.json (the REST API's id and URL, every function's ARN), checks all it can before
changing anything (offline first, then the deployed API's routes and the functions' code), then with boto3:

1. Gateway responses: puts infra.package's GATEWAY_RESPONSES (API Gateway's own 4XX/5XX, 401 and 429 with the SPA's
   CORS headers, unknown routes a plain 404), allowing the first origin of the stage's PHOTOSKY_ALLOWED_ORIGINS (the
   SPA's distribution, as infra.configure_stage writes it), then deploys the API to its stage: gateway responses
   take effect only through a deployment. The next `chalice deploy` re-imports Chalice's swagger with put_rest_api
   in overwrite mode, which deletes everything the swagger does not define, these included: run this every time.
2. Stage throttling: the single stack's method settings (infra.package.method_settings: the stage default and the
   share-link routes' lower limits) for the paths the deployed API has, with update_stage. They belong to the stage,
   not to a deployment's snapshot of the API: the next `chalice deploy` (import, then deployment) leaves them be.
3. Bytecode: takes the package Chalice deployed (.chalice/deployments/, found by Chalice's own naming for this
   checkout), runs infra.package's native-code check and bytecode step on it, and updates every function's code.
   Only .pyc files are added: the other entries' names and CRC-32s are checked against Chalice's package, and each
   function's CodeSha256 (the SHA-256 of the whole zip) must be Chalice's package before and the new one after.

Idempotent: a second run puts the same responses and settings and leaves code that already has this bytecode alone
(the rebuild is byte-for-byte the same). Each run does create one API deployment, as `chalice deploy` does.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from infra.package import (
    GATEWAY_RESPONSES,
    PROJECT_DIR,
    STAGES,
    PackagingError,
    add_bytecode,
    check_deployment_zip,
    gateway_responses,
    method_settings,
)

if TYPE_CHECKING:
    import boto3
    from chalice.config import Config

# The variable infra.configure_stage fills from the resources stack: the SPA's distribution first, then SpaOrigins.
ALLOWED_ORIGINS_VARIABLE = "PHOTOSKY_ALLOWED_ORIGINS"
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_FUNCTION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:([a-z0-9-]+):[0-9]{12}:function:[A-Za-z0-9_-]+$")
# Chalice dates every entry of its packages 1980-01-01 (chalice.utils.ChaliceZipFile); the .pyc entries too, so the
# same sources always give the same package.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class AfterDeployError(Exception):
    pass


@dataclass(frozen=True)
class Deployed:
    """What `chalice deploy` recorded for one Chalice stage."""

    rest_api_id: str
    api_stage: str  # the API Gateway stage (Chalice's api_gateway_stage), not the Chalice stage
    functions: dict[str, str]  # Chalice's function name -> its ARN
    region: str


@dataclass(frozen=True)
class BytecodePackage:
    data: bytes
    sources: int  # entries kept as they are in Chalice's package
    bytecode: int  # .pyc files added
    uncompiled: list[str]  # .py files left without bytecode (add_bytecode requires it of app.py and chalicelib/)


def read_deployed(project_dir: Path, stage: str) -> Deployed:
    """Chalice's record of the stage (chalice.deploy.deployer.ResultsRecorder, schema 2.0)."""
    path = project_dir / ".chalice" / "deployed" / f"{stage}.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise AfterDeployError(
            f"no record of a deploy of stage {stage} ({path}): run chalice deploy --stage {stage} first"
        ) from None
    except ValueError as e:
        raise AfterDeployError(f"{path} is not Chalice's record of a deploy: {e}") from None
    resources = record.get("resources") if isinstance(record, dict) else None
    if not isinstance(resources, list):
        raise AfterDeployError(f"{path} is not Chalice's record of a deploy: it lists no resources")
    entries = [r for r in resources if isinstance(r, dict)]
    apis = [r for r in entries if r.get("resource_type") == "rest_api" and {"rest_api_id", "rest_api_url"} <= set(r)]
    functions = {
        str(r.get("name")): str(r.get("lambda_arn")) for r in entries if r.get("resource_type") == "lambda_function"
    }
    if len(apis) != 1 or not functions:
        raise AfterDeployError(f"{path} records no REST API or no function: run chalice deploy --stage {stage} first")
    regions = set()
    for arn in functions.values():
        match = _FUNCTION_ARN.match(arn)
        if not match:
            raise AfterDeployError(f"{path} is not Chalice's record of a deploy: {arn!r} is not a function's ARN")
        regions.add(match.group(1))
    if len(regions) != 1:
        raise AfterDeployError(f"{path} records functions in several regions: {', '.join(sorted(regions))}")
    # https://<id>.execute-api.<region>.<dns suffix>/<api_gateway_stage>/ (chalice.deploy.planner._plan_restapi)
    api_stage = urlparse(str(apis[0]["rest_api_url"])).path.strip("/")
    # The region Chalice deployed to, from the ARNs, whatever the environment's default region is.
    return Deployed(str(apis[0]["rest_api_id"]), api_stage, functions, regions.pop())


def chalice_config(project_dir: Path, stage: str) -> Config:
    """The stage's settings as Chalice reads them (without importing app.py)."""
    from chalice.config import Config

    path = project_dir / ".chalice" / "config.json"
    try:
        on_disk = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise AfterDeployError(f"cannot read {path}: {e}") from None
    if stage not in on_disk.get("stages", {}):
        raise AfterDeployError(f"stage {stage} is not in {path}")
    return Config(chalice_stage=stage, user_provided_params={"project_dir": str(project_dir)}, config_from_disk=on_disk)


def spa_origin(config: Config) -> str:
    """The origin API Gateway's own responses allow: one static value, the SPA's distribution (as in the single
    stack, whose responses allow only the distribution)."""
    first = config.environment_variables.get(ALLOWED_ORIGINS_VARIABLE, "").split(",")[0].strip()
    if not first:
        raise AfterDeployError(
            f"stage {config.chalice_stage} has no {ALLOWED_ORIGINS_VARIABLE} in .chalice/config.json: "
            f"run python -m infra.configure_stage --stage {config.chalice_stage} first"
        )
    if not _ORIGIN.match(first):
        raise AfterDeployError(f"{ALLOWED_ORIGINS_VARIABLE} must start with an origin (https://host[:port]): {first!r}")
    return first


def chalice_package(project_dir: Path, config: Config) -> Path:
    """The package `chalice deploy` just built and deployed for this checkout. Chalice caches it under
    .chalice/deployments/<md5 of requirements.txt, app.py, chalicelib/ and vendor/>-<runtime>[-<architecture>].zip
    (appcode-<md5>-<runtime>.zip with automatic_layer), rebuilt or refreshed by every deploy: so named by Chalice's
    own packager for the current files and settings, it is the deployed one unless the checkout changed since."""
    from chalice.deploy.packager import AppOnlyDeploymentPackager, LambdaDeploymentPackager
    from chalice.utils import UI, OSUtils

    packager_class = AppOnlyDeploymentPackager if config.automatic_layer else LambdaDeploymentPackager
    # Naming a package needs no dependency builder (only building one does).
    packager = packager_class(OSUtils(), cast(Any, None), UI(), architecture=config.lambda_architecture)
    path = Path(packager.deployment_package_filename(str(project_dir), config.lambda_python_version))
    if not path.is_file():
        raise AfterDeployError(
            f"no deployment package for this checkout ({path.name} in .chalice/deployments): run chalice deploy "
            f"--stage {config.chalice_stage} first, and change nothing in requirements.txt, app.py or chalicelib/ "
            "before this step"
        )
    return path


def source_entries(archive: zipfile.ZipFile) -> dict[str, int]:
    """{name: CRC-32} of every entry but bytecode: what adding bytecode must leave as it was."""
    return {info.filename: info.CRC for info in archive.infolist() if not info.filename.endswith(".pyc")}


def missing_bytecode(names: list[str]) -> list[str]:
    """The .py files in `names` without a .pyc for this interpreter beside them (in __pycache__)."""
    present = set(names)
    missing = []
    for name in names:
        if name.endswith(".py"):
            source = PurePosixPath(name)
            compiled = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
            if str(compiled) not in present:
                missing.append(name)
    return missing


def with_bytecode(chalice_zip: Path) -> BytecodePackage:
    """Chalice's package with bytecode, through infra.package's native-code check and bytecode step. Built from
    Chalice's entries as they are (metadata included) plus the .pyc files, each dated like Chalice's, in name order:
    the same package always gives the same bytes, so a second run finds the functions already up to date."""
    check_deployment_zip(chalice_zip)
    with tempfile.TemporaryDirectory() as scratch:
        compiled_zip = Path(scratch) / chalice_zip.name
        shutil.copyfile(chalice_zip, compiled_zip)
        add_bytecode(compiled_zip)
        buffer = io.BytesIO()
        with zipfile.ZipFile(chalice_zip) as original, zipfile.ZipFile(compiled_zip) as compiled:
            _same_sources(source_entries(original), source_entries(compiled), "the bytecode step")
            bytecode = sorted(name for name in compiled.namelist() if name.endswith(".pyc"))
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
                # A working tree's own __pycache__ rides along in Chalice's package (timestamp .pyc that never
                # validate on Lambda, where every source is dated 1980): the step's bytecode replaces them.
                for info in original.infolist():
                    if not info.filename.endswith(".pyc"):
                        out.writestr(info, original.read(info))
                for name in bytecode:
                    entry = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.external_attr = 0o644 << 16
                    out.writestr(entry, compiled.read(name))
            sources = source_entries(original)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as built:
        _same_sources(sources, source_entries(built), "the rebuilt package")
        uncompiled = missing_bytecode(built.namelist())
    return BytecodePackage(buffer.getvalue(), len(sources), len(bytecode), uncompiled)


def _same_sources(expected: dict[str, int], actual: dict[str, int], what: str) -> None:
    changed = sorted(name for name in expected.keys() | actual.keys() if expected.get(name) != actual.get(name))
    if changed:
        raise AfterDeployError(
            f"{what} changed entries of Chalice's package other than bytecode: {', '.join(changed[:5])}"
        )


def put_gateway_responses(apigateway: Any, deployed: Deployed, origin: str) -> str:
    """The single stack's gateway responses, then a deployment to the stage; returns the deployment's id."""
    for response_type, response in gateway_responses(f"'{origin}'").items():
        options: dict[str, Any] = {"responseParameters": response["responseParameters"]}
        if "statusCode" in response:
            options["statusCode"] = str(response["statusCode"])
        if "responseTemplates" in response:
            options["responseTemplates"] = response["responseTemplates"]
        apigateway.put_gateway_response(restApiId=deployed.rest_api_id, responseType=response_type, **options)
    deployment = apigateway.create_deployment(
        restApiId=deployed.rest_api_id,
        stageName=deployed.api_stage,
        description="infra.after_chalice_deploy: the gateway responses",
    )
    return str(deployment["id"])


def deployed_paths(apigateway: Any, rest_api_id: str) -> dict[str, dict[str, Any]]:
    """The deployed API's routes in the shape of an OpenAPI body's `paths` (what method_settings checks)."""
    paths: dict[str, dict[str, Any]] = {}
    for page in apigateway.get_paginator("get_resources").paginate(restApiId=rest_api_id, embed=["methods"]):
        for resource in page["items"]:
            paths[resource["path"]] = {method.lower(): {} for method in resource.get("resourceMethods", {})}
    return paths


def throttle_stage(apigateway: Any, deployed: Deployed, settings: list[dict[str, Any]]) -> None:
    """The single stack's method settings (method_settings), as update_stage patch operations (replace: idempotent)."""
    operations = [
        # A method setting's path is /<resource path, "/" as "~1">/<method>/<setting>; "/*/*" is every method.
        {"op": "replace", "path": f"{s['ResourcePath']}/{s['HttpMethod']}/throttling/{name}", "value": str(s[field])}
        for s in settings
        for name, field in (("rateLimit", "ThrottlingRateLimit"), ("burstLimit", "ThrottlingBurstLimit"))
    ]
    apigateway.update_stage(restApiId=deployed.rest_api_id, stageName=deployed.api_stage, patchOperations=operations)


def _route(setting: dict[str, Any]) -> str:
    if setting["HttpMethod"] == "*":
        return "every method"
    return f"{setting['HttpMethod']} {setting['ResourcePath'][1:].replace('~1', '/')}"


def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256: the base64 SHA-256 of the deployment package."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def needs_bytecode(lambda_client: Any, arn: str, chalice_zip: Path, package: BytecodePackage, runtime: str) -> bool:
    """Whether the function runs Chalice's package for this checkout (True) or already this package (False);
    anything else is an error."""
    # An update still in progress (Chalice's own) would refuse another one.
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=arn)
    configuration = lambda_client.get_function(FunctionName=arn)["Configuration"]
    if configuration["Runtime"] != runtime:
        raise AfterDeployError(
            f"{arn} runs {configuration['Runtime']}, but this interpreter compiles for {runtime}: run chalice deploy "
            "and this step with the same Python"
        )
    if configuration["CodeSha256"] == code_sha256(package.data):
        return False
    if configuration["CodeSha256"] != code_sha256(chalice_zip.read_bytes()):
        raise AfterDeployError(
            f"{arn} does not run Chalice's package for this checkout ({chalice_zip.name}): run chalice deploy "
            "from this checkout first"
        )
    return True


def update_code(lambda_client: Any, arn: str, package: BytecodePackage) -> None:
    """Give the function the package with bytecode, and check Lambda has exactly that package."""
    lambda_client.update_function_code(FunctionName=arn, ZipFile=package.data)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=arn)
    now = lambda_client.get_function(FunctionName=arn)["Configuration"]["CodeSha256"]
    if now != code_sha256(package.data):
        raise AfterDeployError(
            f"{arn} reports CodeSha256 {now} after the update, not the package's {code_sha256(package.data)}"
        )


def run(stage: str, project_dir: Path = PROJECT_DIR, session: boto3.session.Session | None = None) -> None:
    if stage not in STAGES:
        raise AfterDeployError(
            f"stage must be one of {', '.join(STAGES)} (the stages infra.package throttles): {stage!r}"
        )
    # Everything that can fail offline does so before the first AWS call.
    deployed = read_deployed(project_dir, stage)
    config = chalice_config(project_dir, stage)
    origin = spa_origin(config)
    chalice_zip = chalice_package(project_dir, config)
    package = with_bytecode(chalice_zip)

    import boto3

    session = session or boto3.session.Session()
    apigateway = session.client("apigateway", region_name=deployed.region)
    lambda_client = session.client("lambda", region_name=deployed.region)

    # What the deployed stage must be like (a throttled public route missing from the API, functions not running
    # Chalice's package for this checkout): checked before the step changes anything.
    settings = method_settings(stage, {"paths": deployed_paths(apigateway, deployed.rest_api_id)})
    runtime = config.lambda_python_version
    outdated = {
        name: needs_bytecode(lambda_client, arn, chalice_zip, package, runtime)
        for name, arn in deployed.functions.items()
    }
    deployment = put_gateway_responses(apigateway, deployed, origin)
    print(
        f"gateway responses: {', '.join(GATEWAY_RESPONSES)} on REST API {deployed.rest_api_id}, allowing {origin}; "
        f"deployed to stage {deployed.api_stage} (deployment {deployment})"
    )
    # After the deployment: moto's create_deployment replaces the stage, settings and all (AWS keeps them).
    throttle_stage(apigateway, deployed, settings)
    limits = "; ".join(
        f"{_route(s)} {s['ThrottlingRateLimit']}/s (burst {s['ThrottlingBurstLimit']})" for s in settings
    )
    print(f"stage throttling: stage {deployed.api_stage}: {limits}")
    for name, arn in deployed.functions.items():
        if outdated[name]:
            update_code(lambda_client, arn, package)
        print(
            f"bytecode: {name}: {'updated' if outdated[name] else 'already has this bytecode'} ({package.bytecode} "
            f".pyc beside {package.sources} entries of {chalice_zip.name}, whose names and CRC-32s are unchanged)"
        )
    if package.uncompiled:
        print(f"bytecode: no .pyc for {len(package.uncompiled)} .py files: {', '.join(package.uncompiled[:5])}")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.after_chalice_deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help="the Chalice stage just deployed (dev or prod)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help="the Chalice project (default: this one)")
    args = parser.parse_args(argv)
    try:
        run(args.stage, args.project_dir)
    except (AfterDeployError, PackagingError, OSError, ClientError, BotoCoreError) as e:
        print(f"infra.after_chalice_deploy: error: {_one_line(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
