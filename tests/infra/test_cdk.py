"""The CDK app (infra/cdk), checked offline: `cdk synth` of dev and prod once per session (the CLI from npm, the
library from PyPI, no AWS access), then the single stack's template checks on the CDK's templates, and the CDK
stack's parity with the single stack (`infra.package`), one guarantee at a time, each shown to fail on a difference.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import checks
from infra.cdk import parity
from infra.cdk.app import UsageError, stages_from_context
from infra.cdk.include import content_digest, local_code, split_sam_references
from infra.package import STAGES, PackagingError, package

PROJECT_DIR = Path(__file__).resolve().parents[2]
CDK_DIR = PROJECT_DIR / "infra" / "cdk"
CDK_CLI = CDK_DIR / "node_modules" / ".bin" / "cdk"
# The CLI's own calls home, all off: the version check (npm), notices, telemetry, CDKMetadata version reporting.
CDK_FLAGS = ("--no-notices", "--no-version-reporting")
Template = dict[str, Any]


def cdk_missing(cli: Path = CDK_CLI) -> str | None:
    """Why the CDK checks cannot run, or None: both halves must be installed (`make test` installs them)."""
    absent = []
    if importlib.util.find_spec("aws_cdk") is None or importlib.util.find_spec("constructs") is None:
        absent.append("the CDK library (requirements-cdk.txt)")
    if not cli.is_file():
        absent.append(f"the CDK CLI ({cli.relative_to(PROJECT_DIR) if cli.is_relative_to(PROJECT_DIR) else cli})")
    if not absent:
        return None
    return (
        f"{' and '.join(absent)} not installed: `make test` installs them (if it thinks they are, remove the stamp"
        " .venv/.installed-cdk)"
    )


class AwsSentinel:
    """A listener on 127.0.0.1 that AWS_ENDPOINT_URL points every AWS SDK at (the CLI's JavaScript SDK and boto3
    alike): it counts the calls that would have gone to AWS and answers none."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.calls += 1
            connection.close()

    def __enter__(self) -> AwsSentinel:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


def offline_environment(aws_endpoint: str, *, credentials: bool = False) -> dict[str, str]:
    """The environment `cdk` runs in: a dummy region, every AWS endpoint on the sentinel, and no credentials (with
    any, even dummies, the CLI asks STS for the default account before it runs the app), no metadata service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CDK_DISABLE_CLI_TELEMETRY": "1",
        }
    )
    if credentials:
        env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    return env


@pytest.fixture(scope="session")
def cdk_installed() -> None:
    """Fail, never skip, without the CDK: `make test` must run these checks."""
    missing = cdk_missing()
    if missing:
        pytest.fail(missing)


@dataclass(frozen=True)
class Synthesized:
    assembly: Path
    aws_calls: int

    def template(self, stage: str) -> Template:
        loaded: Template = json.loads((self.assembly / f"photosky-{stage}.template.json").read_text())
        return loaded

    def code(self, stage: str) -> dict[str, Path]:
        return parity.cdk_stack_code(self.template(stage), self.assembly, f"photosky-{stage}")


@pytest.fixture(scope="session")
def synthesized(cdk_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Both stages in one `cdk synth` (one app, two stacks: the CDK's start-up is paid once)."""
    assembly = tmp_path_factory.mktemp("cdk") / "cdk.out"
    output = os.path.relpath(assembly, CDK_DIR)
    with AwsSentinel() as sentinel:
        started = time.monotonic()
        result = subprocess.run(
            # --output relative to infra/cdk, as `make cdk-synth` gives it: the app must resolve it before chalice
            # (which runs from the project's root) writes there.
            [str(CDK_CLI), "synth", "-c", f"stage={','.join(STAGES)}", *CDK_FLAGS, "--quiet", "--output", output],
            cwd=CDK_DIR,
            env=offline_environment(sentinel.url),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    if result.returncode != 0:
        pytest.fail(f"cdk synth failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    print(f"cdk synth of {', '.join(STAGES)}: {time.monotonic() - started:.1f} s")
    return Synthesized(assembly, sentinel.calls)


@pytest.fixture(scope="session")
def single_stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Template, Path]]:
    """{stage: (infra.package's template, its folder)}: the single stack, built on its own to compare against."""
    built = {}
    for stage in STAGES:
        template_path = package(stage, tmp_path_factory.mktemp(f"single-{stage}") / "out")
        built[stage] = (json.loads(template_path.read_text()), template_path.parent)
    return built


# --- synth ----------------------------------------------------------------------------------------------------------


def test_synth_builds_a_stack_per_stage_without_calling_aws(synthesized: Synthesized) -> None:
    manifest = json.loads((synthesized.assembly / "manifest.json").read_text())
    stacks = {name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"}
    assert stacks == {f"photosky-{stage}" for stage in STAGES}
    for stage in STAGES:
        assert synthesized.template(stage)["Parameters"]["Stage"]["Default"] == stage
        # Environment-agnostic: the account and region are the deploying credentials', never baked in at synth.
        assert manifest["artifacts"][f"photosky-{stage}"]["environment"] == "aws://unknown-account/unknown-region"
    assert synthesized.aws_calls == 0


def test_the_sentinel_sees_the_call_aws_credentials_would_make(cdk_installed: None, tmp_path: Path) -> None:
    """Why synth runs without credentials, and proof the sentinel would catch a call: with dummy ones, the CLI asks
    STS for the default account before it runs any app (`--app true` runs none; its failure is expected)."""
    with AwsSentinel() as sentinel:
        subprocess.run(
            [str(CDK_CLI), "synth", "--app", "true", *CDK_FLAGS, "--output", str(tmp_path)],
            cwd=CDK_DIR,
            env=offline_environment(sentinel.url, credentials=True),
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert sentinel.calls >= 1


def test_without_the_cdk_the_tests_fail_and_say_make_test_installs_it(tmp_path: Path) -> None:
    message = cdk_missing(tmp_path / "no-cdk")
    assert message is not None
    assert "the CDK CLI" in message
    assert "`make test` installs them" in message


def test_the_app_refuses_a_missing_stage_with_a_usage_line(cdk_installed: None, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(CDK_DIR / "app.py")],
        cwd=CDK_DIR,
        env={**offline_environment("http://127.0.0.1:9"), "CDK_OUTDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "error: say which stage to build: cdk synth -c stage=dev" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("value", "stages"), [("dev", ("dev",)), ("prod", ("prod",)), (" dev, prod,dev", ("dev", "prod"))]
)
def test_the_stage_context_names_one_stage_or_several(value: str, stages: tuple[str, ...]) -> None:
    assert stages_from_context(value) == stages


@pytest.mark.parametrize("value", [None, "", " ", 3, "qa", "dev,qa"])
def test_a_missing_or_unknown_stage_is_refused(value: object) -> None:
    with pytest.raises(UsageError, match=r"cdk synth -c stage=dev \(one of dev, prod"):
        stages_from_context(value)


# --- the single stack's checks, on the CDK's templates -------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_the_cdk_template_passes_cfn_lint(synthesized: Synthesized, stage: str) -> None:
    assert checks.cfn_lint(synthesized.template(stage)) == []


@pytest.mark.parametrize("stage", STAGES)
def test_the_sam_transformed_cdk_template_passes_cfn_lint(synthesized: Synthesized, stage: str) -> None:
    transformed = checks.sam_transform(synthesized.template(stage), {"Stage": stage})
    assert "Transform" not in transformed
    assert checks.cfn_lint(transformed) == []


POLICY_RULES: list[Callable[[Template], list[str]]] = [
    checks.unguarded_routes,
    checks.public_routes_without_their_own_throttle,
    checks.wildcard_grants,
    checks.websocket_stage_logging,
    checks.loose_connections_grants,
]


@pytest.mark.parametrize("rule", POLICY_RULES, ids=lambda rule: rule.__name__)
@pytest.mark.parametrize("stage", STAGES)
def test_the_cdk_template_keeps_the_policy_rules(
    synthesized: Synthesized, stage: str, rule: Callable[..., Any]
) -> None:
    assert rule(synthesized.template(stage)) == []


# --- parity with the single stack -----------------------------------------------------------------------------------


@pytest.mark.parametrize("check", parity.TEMPLATE_CHECKS)
@pytest.mark.parametrize("stage", STAGES)
def test_the_cdk_stack_declares_what_the_single_stack_declares(
    synthesized: Synthesized, single_stack: dict[str, tuple[Template, Path]], stage: str, check: str
) -> None:
    assert parity.TEMPLATE_CHECKS[check](single_stack[stage][0], synthesized.template(stage)) == []


@pytest.mark.parametrize("stage", STAGES)
def test_user_data_outlives_a_cdk_destroy(synthesized: Synthesized, stage: str) -> None:
    resources = synthesized.template(stage)["Resources"]
    for name in parity.RETAINED:
        assert (resources[name]["DeletionPolicy"], resources[name]["UpdateReplacePolicy"]) == ("Retain", "Retain")


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_ships_the_single_stacks_code_with_bytecode(
    synthesized: Synthesized, single_stack: dict[str, tuple[Template, Path]], stage: str
) -> None:
    template, folder = single_stack[stage]
    code = synthesized.code(stage)
    assert parity.code_differences(parity.single_stack_code(template, folder), code) == []
    with zipfile.ZipFile(code["APIHandler"]) as archive:
        names = set(archive.namelist())
    assert any(n.startswith("__pycache__/app.cpython-312") and n.endswith(".pyc") for n in names)
    # The image libraries are the layer's, which only the worker and the reconciler have: none in the API's code.
    assert not any(n.startswith("PIL/") for n in names)
    assert code["ImageLibrariesLayer"] != code["APIHandler"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_code_assets_are_named_by_content_so_an_unchanged_redeploy_uploads_nothing(
    synthesized: Synthesized, single_stack: dict[str, tuple[Template, Path]], stage: str
) -> None:
    """The single stack, built again on its own (new zips, new timestamps), names the same assets: the CDK's object
    key is the SHA-256 of the custom hash (aws-cdk-lib's AssetStaging), here the zip's content_digest."""
    template, folder = single_stack[stage]
    resources = synthesized.template(stage)["Resources"]
    for name, zip_path in parity.single_stack_code(template, folder).items():
        prop = "ContentUri" if name == "ImageLibrariesLayer" else "CodeUri"
        expected = hashlib.sha256(content_digest(zip_path).encode()).hexdigest() + ".zip"
        assert resources[name]["Properties"][prop]["Key"] == expected, name


def _zip(path: Path, members: dict[str, bytes], date_time: tuple[int, int, int, int, int, int]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time), data)
    return path


def test_an_asset_is_named_by_the_names_and_bytes_it_holds_not_by_when_it_was_zipped(tmp_path: Path) -> None:
    members = {"app.py": b"print()", "chalicelib/__init__.py": b""}
    first = content_digest(_zip(tmp_path / "a.zip", members, (2026, 1, 1, 0, 0, 0)))
    rezipped = dict(reversed(members.items()))
    assert content_digest(_zip(tmp_path / "b.zip", rezipped, (2026, 12, 2, 17, 0, 0))) == first
    changed = {**members, "app.py": b"print(1)"}
    assert content_digest(_zip(tmp_path / "c.zip", changed, (2026, 1, 1, 0, 0, 0))) != first
    renamed = {"main.py": b"print()", "chalicelib/__init__.py": b""}
    assert content_digest(_zip(tmp_path / "d.zip", renamed, (2026, 1, 1, 0, 0, 0))) != first


def test_bytecode_counts_by_its_header_which_pins_the_source_not_by_marshals_bytes(tmp_path: Path) -> None:
    header = b"\xcb\r\r\n\x01\x00\x00\x00" + b"source-hash"[:8]
    pyc = "__pycache__/app.cpython-312.pyc"
    first = content_digest(_zip(tmp_path / "a.zip", {pyc: header + b"marshal, one way"}, (2026, 1, 1, 0, 0, 0)))
    other_body = {pyc: header + b"marshal, another way"}
    assert content_digest(_zip(tmp_path / "b.zip", other_body, (2026, 1, 1, 0, 0, 0))) == first
    other_source = {pyc: header[:8] + b"newhash!" + b"marshal, one way"}
    assert content_digest(_zip(tmp_path / "c.zip", other_source, (2026, 1, 1, 0, 0, 0))) != first


def _first_statement(template: Template, role: str) -> dict[str, Any]:
    statement: dict[str, Any] = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][
        0
    ]
    return statement


def _set(path: list[str | int], value: Any) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        target: Any = template
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: list[str | int]) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        target: Any = template
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _grant_more(template: Template) -> None:
    _first_statement(template, "ProcessUploadsRole")["Action"].append("dynamodb:Scan")


def _grant_elsewhere(template: Template) -> None:
    statement = _first_statement(template, "ApiHandlerRole")
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    statement["Resource"] = [*resources, {"Fn::Sub": "arn:${AWS::Partition}:s3:::other"}]


_API = ["Resources", "RestAPI", "Properties"]
_WS_STAGE = ["Resources", "WebsocketAPIStage", "Properties", "DefaultRouteSettings"]
# (check, a deliberate difference in the CDK's dev template, a word the finding must name)
DIFFERENCES: list[tuple[str, Callable[[Template], None], str]] = [
    ("resources", _delete(["Resources", "UploadsDeadLetterQueueAlarm"]), "UploadsDeadLetterQueueAlarm"),
    ("resources", _set(["Resources", "SpaClient", "Type"], "AWS::Cognito::UserPoolDomain"), "SpaClient"),
    ("permissions", _grant_more, "ProcessUploads"),
    ("permissions", _grant_elsewhere, "APIHandler"),
    ("permissions", _set(["Resources", "APIHandler", "Properties", "Role"], "arn:aws:iam::1:role/x"), "APIHandler"),
    ("retention", _set(["Resources", "PhotoTable", "DeletionPolicy"], "Delete"), "PhotoTable"),
    ("retention", _delete(["Resources", "UserPool", "UpdateReplacePolicy"]), "UserPool"),
    ("throttling", _set([*_API, "MethodSettings", 0, "ThrottlingRateLimit"], 1000), "RestAPI"),
    ("throttling", _set([*_WS_STAGE, "LoggingLevel"], "INFO"), "WebsocketAPIStage"),
    (
        "gateway responses",
        _delete([*_API, "DefinitionBody", "x-amazon-apigateway-gateway-responses", "THROTTLED"]),
        "RestAPI",
    ),
    (
        "layers",
        _set(["Resources", "APIHandler", "Properties", "Layers"], [{"Ref": "ImageLibrariesLayer"}]),
        "APIHandler",
    ),
    ("layers", _delete(["Resources", "ProcessUploads", "Properties", "Layers"]), "ProcessUploads"),
    ("definitions", _set(["Resources", "UploadsQueue", "Properties", "VisibilityTimeout"], 30), "UploadsQueue"),
    ("definitions", _delete(["Outputs", "WebsocketUrl"]), "Outputs"),
    ("definitions", _set(["Parameters", "Stage", "Default"], "prod"), "Parameters"),
    ("definitions", _set([*_API, "DefinitionBody", "paths", "/health", "get", "security"], []), "RestAPI"),
]


@pytest.mark.parametrize(("check", "mutate", "named"), DIFFERENCES, ids=[f"{c}-{n}" for c, _, n in DIFFERENCES])
def test_each_parity_check_catches_a_deliberate_difference(
    synthesized: Synthesized,
    single_stack: dict[str, tuple[Template, Path]],
    check: str,
    mutate: Callable[[Template], None],
    named: str,
) -> None:
    mutated = copy.deepcopy(synthesized.template("dev"))
    mutate(mutated)
    problems = parity.TEMPLATE_CHECKS[check](single_stack["dev"][0], mutated)
    assert any(named in problem for problem in problems), problems


def _rezip(source: Path, target: Path, keep: Callable[[str], bool], change: str | None = None) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            if keep(name):
                new.writestr(name, old.read(name) + (b"\n# changed\n" if name == change else b""))
    return target


def test_code_without_bytecode_or_with_another_file_is_caught(
    synthesized: Synthesized, single_stack: dict[str, tuple[Template, Path]], tmp_path: Path
) -> None:
    template, folder = single_stack["dev"]
    single = parity.single_stack_code(template, folder)
    cdk = synthesized.code("dev")
    no_bytecode = _rezip(cdk["APIHandler"], tmp_path / "no-pyc.zip", lambda n: not n.endswith(".pyc"))
    problems = parity.code_differences(single, {**cdk, "APIHandler": no_bytecode})
    assert "code of APIHandler: no bytecode for app.py" in "\n".join(problems)
    changed = _rezip(cdk["WebsocketMessage"], tmp_path / "changed.zip", lambda n: True, change="app.py")
    assert parity.code_differences(single, {**cdk, "WebsocketMessage": changed}) == [
        "code of WebsocketMessage: differs in app.py"
    ]
    swapped = {**cdk, "ImageLibrariesLayer": cdk["APIHandler"]}
    assert any(p.startswith("code of ImageLibrariesLayer: differs") for p in parity.code_differences(single, swapped))
    missing = {**cdk, "ProcessUploads": tmp_path / "absent.zip"}
    assert parity.code_differences(single, missing) == [
        "code of ProcessUploads: absent.zip is not in the cloud assembly"
    ]


def test_packaged_chalice_is_chalices_construct_with_its_two_packaging_hooks(cdk_installed: None) -> None:
    """If chalice renamed the hooks, the construct would package on its own (unwired): parity would fail, and this
    says why."""
    from chalice.cdk import Chalice

    from infra.cdk.stack import PackagedChalice

    assert issubclass(PackagedChalice, Chalice)
    for hook in ("_package_app", "_generate_sam_template_with_assets"):
        assert hook in vars(Chalice)
        assert hook in vars(PackagedChalice)


# --- what the stack does to the template before CfnInclude ----------------------------------------------------------


def test_properties_referring_to_the_sam_alias_are_set_verbatim_after_the_include() -> None:
    alias = {"Ref": "APIHandler.Alias"}
    body = {"paths": {"/": {"get": {"uri": {"Fn::Sub": ["${A}/invocations", {"A": alias}]}}}}}
    template = {
        "Resources": {
            "RestAPI": {"Type": "AWS::Serverless::Api", "Properties": {"DefinitionBody": body, "Name": "x"}},
            "Permission": {"Type": "AWS::Lambda::Permission", "Properties": {"FunctionName": alias}},
            "Other": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "APIHandler"}}},
        }
    }
    includable, verbatim = split_sam_references(template)
    assert verbatim == {"RestAPI": {"DefinitionBody": body}, "Permission": {"FunctionName": alias}}
    resources = includable["Resources"]
    assert resources["RestAPI"]["Properties"] == {"DefinitionBody": {}, "Name": "x"}
    assert isinstance(resources["Permission"]["Properties"]["FunctionName"], str)
    assert resources["Other"] == template["Resources"]["Other"]
    assert template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"] is body  # the input is left alone


def function_template(code_uri: str) -> Template:
    return {"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": code_uri}}}}


def test_local_code_finds_each_zip_next_to_the_template(tmp_path: Path) -> None:
    (tmp_path / "deployment.zip").write_bytes(b"zip")
    assert local_code(function_template("./deployment.zip"), tmp_path) == {
        ("Fn", "CodeUri"): (tmp_path / "deployment.zip").resolve()
    }


@pytest.mark.parametrize(
    ("code_uri", "problem"),
    [
        ("s3://bucket/code.zip", "not a local zip"),
        ("./absent.zip", "not a file of"),
        ("../outside.zip", "not a file of"),
    ],
)
def test_code_the_stack_cannot_ship_is_refused(tmp_path: Path, code_uri: str, problem: str) -> None:
    folder = tmp_path / "package"
    folder.mkdir()
    (tmp_path / "outside.zip").write_bytes(b"zip")
    with pytest.raises(PackagingError, match=problem):
        local_code(function_template(code_uri), folder)
