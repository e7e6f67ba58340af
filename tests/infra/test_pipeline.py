"""The deploy pipeline, checked offline: the GitHub Actions workflows (.github/workflows) and the roles they assume
(infra/pipeline.yaml).

actionlint and zizmor lint the workflows; the other workflow tests pin what the linters do not know (pins by commit,
who may ask for an OIDC token, the order of the stages, that every command names something that exists). The
template passes cfn-lint; its roles are checked against AWS's own data as cfn-lint ships it: the handler
permissions each resource type's schema lists (what CloudFormation needs to create, update and delete the packaged
stage template) and IAM's table of which resources each action can be scoped to.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cfnlint.data.AdditionalSpecs
import cfnlint.data.schemas
import pytest
import yaml  # type: ignore[import-untyped]

from infra import checks
from infra.package import (
    FUNCTION_NAMES,
    load_resources_template,
    merge_and_wire,
    render_policies,
    run_chalice_package,
)
from infra.publish_web import publish_commands
from tests.infra.test_resources_template import load_template, run_cfn_lint

PROJECT_DIR = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = PROJECT_DIR / ".github" / "workflows"
WORKFLOWS = {path.name: path for path in sorted(WORKFLOWS_DIR.glob("*.yml"))}
PIPELINE_TEMPLATE = PROJECT_DIR / "infra" / "pipeline.yaml"
STAGES = ("dev", "prod")
BIN = Path(sys.executable).parent

# Placeholder values for resolving the template's intrinsics offline.
ACCOUNT = "123456789012"
REGION = "us-east-1"
# IAM limits the inline policies of one role to 10,240 characters together (whitespace not counted); the longest
# region names make the longest ARNs.
INLINE_POLICY_LIMIT = 10_240
LONGEST_REGION = "ap-southeast-2"

# The IAM prefix of each CloudFormation namespace the stage template uses.
IAM_PREFIX = {
    "ApiGateway": "apigateway",
    "ApiGatewayV2": "apigateway",
    "CloudFront": "cloudfront",
    "CloudWatch": "cloudwatch",
    "Cognito": "cognito-idp",
    "DynamoDB": "dynamodb",
    "Events": "events",
    "IAM": "iam",
    "Lambda": "lambda",
    "S3": "s3",
    "SQS": "sqs",
    "SecretsManager": "secretsmanager",
}

# What the resource schemas' handlers may ask for that the execution role does not get, and why. Services the stage
# does not use are left out whole; each action here must appear in some handler of the template's types.
UNUSED_SERVICES = {
    "kms": "every key the stage uses is AWS managed (aws/dynamodb, aws/lambda, aws/secretsmanager, SSE-SQS, SSE-S3)",
    "ec2": "no function runs in a VPC",
    "elasticfilesystem": "no function mounts EFS",
    "s3files": "no function mounts S3 Files",
    "s3tables": "no S3 table bucket",
    "kinesis": "the table streams to no Kinesis stream",
    "logs": "only a table import logs to CloudWatch Logs, and there is none",
    "codedeploy": "no gradual deployment (SAM DeploymentPreference) of the API's alias",
}
EXCLUDED_ACTIONS = {
    "iam:AttachRolePolicy": "the functions' roles have inline policies only; attaching a managed one is an escalation",
    "iam:PutRolePermissionsBoundary": "no permissions boundary is set",
    "iam:DeleteRolePermissionsBoundary": "no permissions boundary is set",
    "iam:CreateServiceLinkedRole": "no resource of the stage needs a service-linked role created",
    "dynamodb:Scan": "users' data: only a table import or a replica reads or writes items, and the stage has neither",
    "dynamodb:Query": "users' data (see dynamodb:Scan)",
    "dynamodb:GetItem": "users' data (see dynamodb:Scan)",
    "dynamodb:PutItem": "users' data (see dynamodb:Scan)",
    "dynamodb:UpdateItem": "users' data (see dynamodb:Scan)",
    "dynamodb:DeleteItem": "users' data (see dynamodb:Scan)",
    "dynamodb:BatchWriteItem": "users' data (see dynamodb:Scan)",
    "dynamodb:ImportTable": "no ImportSourceSpecification",
    "dynamodb:DescribeImport": "no ImportSourceSpecification",
    "dynamodb:CreateTableReplica": "no replicas",
    "dynamodb:AssociateTableReplica": "no replicas",
    "dynamodb:EnableKinesisStreamingDestination": "no Kinesis stream",
    "dynamodb:DisableKinesisStreamingDestination": "no Kinesis stream",
    "dynamodb:UpdateKinesisStreamingDestination": "no Kinesis stream",
    "dynamodb:PutResourcePolicy": "no resource policy on the table (one could share it with other accounts)",
    "s3:DeleteObject": "objects are users' photos and the SPA: the stack never deletes them",
    "s3:PutObjectAcl": "ACLs are disabled (BucketOwnerEnforced)",
    "s3:PutBucketAcl": "ACLs are disabled (BucketOwnerEnforced)",
    "s3:PutReplicationConfiguration": "no replication (it would copy users' photos out of the stage)",
    "lambda:PassCapacityProvider": "no Lambda managed instances",
    "lambda:GetCodeSigningConfig": "no code signing configuration",
    "apigateway:UpdateRestApiPolicy": "no resource policy on the API",
    "cloudfront:CreateConnectionGroup": "no multi-tenant distribution",
    "cloudfront:GetConnectionGroup": "no multi-tenant distribution",
    "cloudfront:GetVpcOrigin": "no VPC origin",
    "cloudfront:UpdateDistributionWithStagingConfig": "no continuous deployment (staging distribution)",
    "secretsmanager:ReplicateSecretToRegions": "no replica regions",
    "secretsmanager:RemoveRegionsFromReplication": "no replica regions",
}
# Resource patterns of things whose ids AWS assigns at creation, so the stage's name cannot appear in them.
AWS_ASSIGNED_IDS = {
    "arn:aws:apigateway:us-east-1::/restapis",
    "arn:aws:apigateway:us-east-1::/restapis/*",
    "arn:aws:apigateway:us-east-1::/apis",
    "arn:aws:apigateway:us-east-1::/apis/*",
    f"arn:aws:cognito-idp:us-east-1:{ACCOUNT}:userpool/*",
    f"arn:aws:cloudfront::{ACCOUNT}:distribution/*",
    f"arn:aws:cloudfront::{ACCOUNT}:cache-policy/*",
    f"arn:aws:cloudfront::{ACCOUNT}:origin-access-control/*",
    f"arn:aws:cloudfront::{ACCOUNT}:response-headers-policy/*",
    f"arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:*",
}
# CloudFormation authorizes a change set on a SAM template on the transform too; IAM's table lists only stacks.
SAM_TRANSFORM = "arn:aws:cloudformation:us-east-1:aws:transform/Serverless-2016-10-31"


# --- helpers ------------------------------------------------------------------------------------------------------


# The deploy workflow's call of the test workflow, in GitHub's self-repository form (this commit's own file).
TEST_WORKFLOW_CALL = "$/.github/workflows/test.yml"


def read_workflow(name: str) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load(WORKFLOWS[name].read_text())
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in document:
        document["on"] = document.pop(True)
    return document


def jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in WORKFLOWS:
        for job_id, job in read_workflow(name)["jobs"].items():
            yield name, job_id, job


def steps() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, job_id, job in jobs():
        for step in job.get("steps", []):  # a job that calls a reusable workflow has none
            yield name, job_id, step


def run_scripts() -> Iterator[tuple[str, str]]:
    for name, job_id, step in steps():
        if "run" in step:
            yield f"{name}/{job_id}/{step.get('name')}", step["run"]


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is missing from the venv: pip install -r requirements-dev.txt"
    return str(path)


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    # ShellCheck and pyflakes are left out so the result is the same on every machine (they are not pinned here).
    return subprocess.run(
        [tool("actionlint"), "-no-color", "-oneline", "-shellcheck=", "-pyflakes=", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=PROJECT_DIR,
    )


def zizmor(directory: Path) -> list[dict[str, Any]]:
    """zizmor's findings, pedantic persona included; --offline and no token: nothing is fetched. A file that is not
    a valid workflow is an error (by default zizmor skips it with a warning, and would report nothing)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--strict-collection",
            "--persona=pedantic",
            "--format=json",
            "--quiet",
            str(directory),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    # Exit codes: 0 clean, 10-14 findings of rising severity; anything else is zizmor failing to run.
    assert result.returncode in (0, 10, 11, 12, 13, 14), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return findings


def copy_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of one workflow with `old` replaced by `new`, alone in a fresh .github/workflows."""
    text = WORKFLOWS[name].read_text()
    assert old in text, old
    directory = tmp_path / ".github" / "workflows"
    directory.mkdir(parents=True)
    (directory / name).write_text(text.replace(old, new))
    return directory


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template["Resources"][role]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def granted(template: dict[str, Any], role: str) -> set[str]:
    return {a for s in statements(template, role) if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def resolve(value: Any, template: dict[str, Any], region: str = REGION) -> Any:
    """The template's intrinsics (Sub, GetAtt, ImportValue) with placeholder account, region and imported values."""
    if isinstance(value, list):
        return [resolve(item, template, region) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Sub" in value:
        text, names = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        known = {
            "AWS::Partition": "aws",
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "ArtifactsBucket.Arn": f"arn:aws:s3:::photosky-pipeline-artifacts-{ACCOUNT}-{region}",
            **{k: resolve(v, template, region) for k, v in names.items()},
        }
        return re.sub(r"\$\{([^}]+)\}", lambda m: known[m.group(1)], text)
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return f"arn:aws:iam::{ACCOUNT}:role/{template['Resources'][logical_id]['Properties']['RoleName']}"
    if "Fn::ImportValue" in value:
        stage, output = re.fullmatch(r"photosky-(dev|prod)-(\w+)", value["Fn::ImportValue"]).groups()  # type: ignore[union-attr]
        return {
            "SpaBucketName": f"photosky-{stage}-spa-{ACCOUNT}-{region}",
            "SpaDistributionId": "E2EXAMPLE0STAGE",
            "UserPoolArn": f"arn:aws:cognito-idp:{region}:{ACCOUNT}:userpool/{region}_Example",
        }[output]
    return {key: resolve(item, template, region) for key, item in value.items()}


def iam_matches(pattern: str, arn: str) -> bool:
    """IAM's matching of a Resource pattern: `*` is any run of characters (`:` and `/` included), `?` any one."""
    return fnmatch.fnmatchcase(arn, pattern)


def handler_permissions(resource_type: str) -> set[str]:
    """What CloudFormation's handlers for `resource_type` may call, per the schema cfn-lint ships."""
    schemas = Path(cfnlint.data.schemas.__file__).parent
    providers = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    schema = json.loads((schemas / "resources" / f"{providers[resource_type]}.json").read_text())
    found = set(schema.get("tagging", {}).get("permissions", []))
    for handler in ("create", "read", "update", "delete"):
        found.update(schema.get("handlers", {}).get(handler, {}).get("permissions", []))
    return found


IAM_TABLE: dict[str, Any] = json.loads(
    (Path(cfnlint.data.AdditionalSpecs.__file__).parent / "Policies.json").read_text()
)


def iam_action(action: str) -> dict[str, Any] | None:
    """IAM's entry for an action ({"Resources": [...]} when it can be scoped), or None if IAM has no such action."""
    service, name = action.split(":")
    entry: dict[str, Any] | None = IAM_TABLE.get(service, {}).get("Actions", {}).get(name.lower())
    return entry


def arn_regex(arn_format: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{\w+\}|\.\*)", arn_format)
    placeholders = {"${Partition}": "aws", "${Region}": "[a-z0-9-]+", "${Account}": "[0-9]{12}", ".*": ".*"}
    return re.compile("".join(placeholders.get(part, re.escape(part)) for part in parts))


def scoping_problems(template: dict[str, Any], role: str) -> list[str]:
    """Each Allow statement against IAM's table: "*" only for actions IAM cannot scope; every scoped action acts on
    one of the statement's resources, and every resource is one some action of the statement acts on (a grant on the
    wrong kind of resource never matches a request, so it grants nothing and the deploy fails)."""
    problems = []
    for statement in statements(template, role):
        resources = as_list(resolve(statement["Resource"], template))
        used: set[str] = set()
        for action in as_list(statement["Action"]):
            entry = iam_action(action)
            if entry is None:
                problems.append(f"{statement['Sid']}: IAM has no action {action}")
                continue
            kinds = entry.get("Resources", [])
            if resources == ["*"]:
                if kinds:
                    problems.append(f"{statement['Sid']}: {action} can be scoped to {kinds}, not '*'")
                continue
            if not kinds:
                problems.append(f"{statement['Sid']}: {action} is authorized on '*' only")
                continue
            acted_on = [resource for resource in resources if acts_on(action, kinds, resource)]
            if not acted_on:
                problems.append(f"{statement['Sid']}: {action} acts on none of {resources}")
            used.update(acted_on)
        problems += [f"{statement['Sid']}: no action acts on {r}" for r in resources if r != "*" and r not in used]
    return problems


def acts_on(action: str, kinds: list[str], resource: str) -> bool:
    if resource == SAM_TRANSFORM:
        return action == "cloudformation:CreateChangeSet"
    service = action.split(":", maxsplit=1)[0]
    formats = [f for kind in kinds for f in IAM_TABLE[service]["Resources"][kind.lower()]["ARNFormats"]]
    # A pattern's `*` stands for some name: any one will do to tell the kind of resource.
    return any(arn_regex(f).fullmatch(resource.replace("*", "x")) for f in formats)


def rendered_policy_size(template: dict[str, Any], role: str) -> int:
    policies = template["Resources"][role]["Properties"]["Policies"]
    rendered = resolve([p["PolicyDocument"] for p in policies], template, LONGEST_REGION)
    return len(re.sub(r"\s", "", json.dumps(rendered, separators=(",", ":"))))


def stage_exports() -> set[str]:
    """Export names of the stage stack (infra/resources.yaml), for both stages."""
    outputs = load_resources_template()["Outputs"]
    return {
        output["Export"]["Name"]["Fn::Sub"].replace("${Stage}", stage)
        for output in outputs.values()
        if "Export" in output
        for stage in STAGES
    }


def role_id(stage: str, kind: str) -> str:
    return f"{stage.capitalize()}{kind}Role"


# --- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    return load_template(PIPELINE_TEMPLATE)


@pytest.fixture(scope="module")
def stage_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The dev stage's packaged template after the SAM transform: the resources CloudFormation really creates.
    (Resource types, names and policies do not depend on the zips, so they are not built.)"""
    out_dir = tmp_path_factory.mktemp("dev")
    render_policies()
    run_chalice_package("dev", out_dir)
    packaged = merge_and_wire(json.loads((out_dir / "sam.json").read_text()), load_resources_template(), "dev")
    return checks.sam_transform(packaged, {"Stage": "dev"})


@pytest.fixture(scope="module")
def stage_types(stage_template: dict[str, Any]) -> set[str]:
    return {resource["Type"] for resource in stage_template["Resources"].values()}


# --- the workflows: linters ---------------------------------------------------------------------------------------


def test_the_workflows_are_the_test_and_deploy_ones() -> None:
    assert set(WORKFLOWS) == {"test.yml", "deploy.yml"}


def test_actionlint_finds_nothing() -> None:
    result = actionlint(*WORKFLOWS.values())
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_actionlint_catches_an_expression_in_a_script(tmp_path: Path) -> None:
    # Proves the linter runs on these files: an untrusted value spliced into a shell script.
    directory = copy_with(
        tmp_path, "test.yml", "run: bash .ci/run", 'run: echo "${{ github.event.pull_request.title }}"'
    )
    result = actionlint(directory / "test.yml")
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout


def test_zizmor_finds_nothing() -> None:
    assert zizmor(WORKFLOWS_DIR) == []


def test_zizmor_catches_an_action_pinned_by_tag_and_persisted_credentials(tmp_path: Path) -> None:
    directory = copy_with(
        tmp_path,
        "deploy.yml",
        "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n        with:\n"
        "          persist-credentials: false",
        "actions/checkout@v7",
    )
    found = {finding["ident"] for finding in zizmor(directory)}
    assert {"unpinned-uses", "artipacked"} <= found


# --- the workflows: what the linters do not know -----------------------------------------------------------------


def test_every_action_is_pinned_by_a_full_commit_sha_with_its_version() -> None:
    pins: dict[str, set[str]] = {}
    for name, path in WORKFLOWS.items():
        for line in path.read_text().splitlines():
            if line.strip().startswith(("- uses:", "uses:")):
                if line.strip() == f"uses: {TEST_WORKFLOW_CALL}":
                    continue  # this repository's own workflow, at the commit being run
                match = re.search(r"uses: ([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$", line)
                assert match, f"{name}: {line.strip()} is not pinned by a commit with its version"
                pins.setdefault(match[1], set()).add(line.split("@")[1])
    assert set(pins) == {"actions/checkout", "actions/setup-python", "aws-actions/configure-aws-credentials"}
    # One version of each action everywhere.
    assert all(len(versions) == 1 for versions in pins.values()), pins


def test_no_workflow_grants_anything_by_default() -> None:
    for name in WORKFLOWS:
        assert read_workflow(name)["permissions"] == {}, name


def test_only_the_deploy_jobs_may_ask_for_an_oidc_token() -> None:
    for name, job_id, job in jobs():
        permissions = job.get("permissions", {})
        assert set(permissions.items()) <= {("contents", "read"), ("id-token", "write")}, (name, job_id)
        if "id-token" in permissions:
            assert (name, job_id, job["environment"]) in {("deploy.yml", "dev", "dev"), ("deploy.yml", "prod", "prod")}


def test_the_stages_deploy_in_order_from_main_only_after_make_test_passed() -> None:
    workflow = read_workflow("deploy.yml")
    test, dev, prod = workflow["jobs"]["test"], workflow["jobs"]["dev"], workflow["jobs"]["prod"]
    assert set(workflow["jobs"]) == {"test", "dev", "prod"}
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    # The commit being deployed passes make test first (the test workflow, called), reading the repository only.
    assert test["uses"] == TEST_WORKFLOW_CALL
    assert test["permissions"] == {"contents": "read"}
    assert (dev["environment"], prod["environment"]) == ("dev", "prod")
    assert as_list(dev["needs"]) == ["test"]
    assert as_list(prod["needs"]) == ["dev"]
    # A run started by hand on another branch deploys nothing.
    assert test["if"] == dev["if"] == prod["if"] == "github.ref == 'refs/heads/main'"


def test_one_deploy_per_stage_at_a_time_never_cancelled() -> None:
    deploys = [job for job_id, job in read_workflow("deploy.yml")["jobs"].items() if job_id != "test"]
    groups = {job["concurrency"]["group"] for job in deploys}
    assert groups == {"deploy-dev", "deploy-prod"}
    assert all(job["concurrency"]["cancel-in-progress"] is False for job in deploys)


def test_prod_runs_the_same_steps_as_dev() -> None:
    jobs_ = read_workflow("deploy.yml")["jobs"]
    dev = json.dumps({k: v for k, v in jobs_["dev"].items() if k != "needs"}, sort_keys=True)
    prod = json.dumps({k: v for k, v in jobs_["prod"].items() if k != "needs"}, sort_keys=True)
    assert dev.replace("dev", "prod") == prod


def test_checkouts_keep_no_credentials() -> None:
    checkouts = [step for _, _, step in steps() if step.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == 3
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_no_expression_is_spliced_into_a_script() -> None:
    for where, script in run_scripts():
        assert "${{" not in script, where


def test_aws_access_comes_from_the_stage_role_through_oidc_only() -> None:
    for name, path in WORKFLOWS.items():
        assert "secrets." not in path.read_text(), name
    logins = [
        (job_id, step["with"])
        for _, job_id, step in steps()
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
    ]
    assert [job_id for job_id, _ in logins] == ["dev", "prod"]
    for _, inputs in logins:
        assert inputs["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(inputs)


def test_the_stack_update_keeps_parameters_and_runs_as_the_execution_role() -> None:
    for where, script in run_scripts():
        if "aws cloudformation deploy" not in script:
            continue
        words = shlex.split(script.replace("\\\n", " "))
        assert "--parameter-overrides" not in words, where
        assert words[words.index("--role-arn") + 1] == "$AWS_CFN_EXECUTION_ROLE_ARN"
        # The capabilities the README's manual deploy passes (IAM roles, the SAM transform).
        capabilities = words[words.index("--capabilities") + 1 : words.index("--capabilities") + 3]
        assert capabilities == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
        assert words[words.index("--stack-name") + 1] == "photosky-$STAGE"


def test_the_pull_request_check_runs_what_ci_runs() -> None:
    workflow = read_workflow("test.yml")
    # Pull requests, and main through the deploy workflow's call (one run per push to main, not two).
    assert set(workflow["on"]) == {"pull_request", "workflow_call"}
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    setup = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
    assert [s["with"]["python-version"] for s in setup] == ["3.12"]
    assert [s["run"] for s in job["steps"] if "run" in s] == ["bash .ci/run"]
    assert "make test" in (PROJECT_DIR / ".ci" / "run").read_text()


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (PROJECT_DIR / "Makefile").read_text(), re.MULTILINE))


def test_every_make_target_the_workflows_run_exists() -> None:
    used = {match for _, script in run_scripts() for match in re.findall(r"\bmake (\w+)", script)}
    assert used == {"package"}
    assert used <= make_targets()


def test_every_python_module_the_workflows_run_exists_with_the_options_given() -> None:
    invocations = [
        shlex.split(line.strip())
        for _, script in run_scripts()
        for line in script.splitlines()
        if ".venv/bin/python -m" in line
    ]
    modules = {words[2] for words in invocations}
    assert modules == {"infra.publish_web", "ops.smoke"}
    for words in invocations:
        module, options = words[2], [w for w in words[3:] if w.startswith("--")]
        assert (PROJECT_DIR / (module.replace(".", "/") + ".py")).is_file(), f"{module} does not exist"
        help_text = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=PROJECT_DIR,
        ).stdout
        for option in options:
            assert option in help_text, f"{module} takes no {option}"


def test_the_spa_is_published_with_the_commands_publish_web_prints() -> None:
    outputs = {"SpaBucketName": "$SPA_BUCKET", "SpaDistributionId": "$SPA_DISTRIBUTION_ID"}
    expected = publish_commands(outputs, Path("build/web"))
    scripts = [script for where, script in run_scripts() if "infra.publish_web" in script]
    assert len(scripts) == 2
    for script in scripts:
        lines = [line.strip().replace('"', "") for line in script.splitlines()]
        for command in expected:
            assert command in lines


# --- the roles: template ------------------------------------------------------------------------------------------


def test_the_pipeline_template_passes_cfn_lint() -> None:
    findings = run_cfn_lint(PIPELINE_TEMPLATE)
    assert findings == [], "\n".join(findings)


def test_cfn_lint_catches_a_dangling_role_in_a_broken_copy(pipeline: dict[str, Any], tmp_path: Path) -> None:
    broken = json.loads(json.dumps(pipeline))
    del broken["Resources"]["DevExecutionRole"]  # still passed by the dev deploy role
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(broken))
    assert any("DevExecutionRole" in f for f in run_cfn_lint(path) if f.startswith("E"))


def test_each_stage_has_its_two_roles_only_when_it_is_chosen(pipeline: dict[str, Any]) -> None:
    conditions = {logical_id: resource.get("Condition") for logical_id, resource in pipeline["Resources"].items()}
    assert conditions == {
        "GitHubOidcProvider": "CreateOidcProvider",
        "ArtifactsBucket": None,
        "ArtifactsBucketPolicy": None,
        "DevDeployRole": "ForDev",
        "DevExecutionRole": "ForDev",
        "ProdDeployRole": "ForProd",
        "ProdExecutionRole": "ForProd",
    }
    assert pipeline["Parameters"]["Stages"]["AllowedValues"] == ["dev,prod", "dev", "prod"]


def test_prod_roles_are_the_dev_roles_on_prods_names(pipeline: dict[str, Any]) -> None:
    for kind in ("Deploy", "Execution"):
        dev = json.dumps(pipeline["Resources"][role_id("dev", kind)], sort_keys=True)
        prod = json.dumps(pipeline["Resources"][role_id("prod", kind)], sort_keys=True)
        assert dev.replace("dev", "prod").replace("Dev", "Prod") == prod


def test_the_oidc_provider_serves_sts_only(pipeline: dict[str, Any]) -> None:
    provider = pipeline["Resources"]["GitHubOidcProvider"]["Properties"]
    assert provider["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("stage", STAGES)
def test_only_this_repositorys_jobs_in_the_stages_environment_may_assume_the_deploy_role(
    pipeline: dict[str, Any], stage: str
) -> None:
    trust = pipeline["Resources"][role_id(stage, "Deploy")]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {
                "Federated": {
                    "Fn::If": ["CreateOidcProvider", {"Ref": "GitHubOidcProvider"}, {"Ref": "GitHubOidcProviderArn"}]
                }
            },
            "Action": "sts:AssumeRoleWithWebIdentity",
            # StringEquals, no wildcard: not another repository, branch, pull request or environment.
            "Condition": {
                "StringEquals": {
                    "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                    "token.actions.githubusercontent.com:sub": {
                        "Fn::Sub": f"repo:${{GitHubOwner}}/${{GitHubRepository}}:environment:{stage}"
                    },
                }
            },
        }
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_only_cloudformation_may_assume_the_execution_role(pipeline: dict[str, Any], stage: str) -> None:
    trust = pipeline["Resources"][role_id(stage, "Execution")]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_the_deploy_role_cannot_touch_iam_but_pass_the_execution_role(pipeline: dict[str, Any], stage: str) -> None:
    role = role_id(stage, "Deploy")
    actions = granted(pipeline, role)
    assert not any(a == "*" or a.endswith(":*") or "*" in a for a in actions)
    assert {a for a in actions if a.startswith("iam:")} == {"iam:PassRole"}
    passes = [s for s in statements(pipeline, role) if "iam:PassRole" in as_list(s["Action"])]
    assert passes == [
        {
            "Sid": "HandTheStackToTheExecutionRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": {"Fn::GetAtt": [role_id(stage, "Execution"), "Arn"]},
            "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        }
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_the_deploy_roles_change_sets_run_as_the_execution_role_on_the_stages_stack(
    pipeline: dict[str, Any], stage: str
) -> None:
    stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/photosky-{stage}/*"
    for statement in statements(pipeline, role_id(stage, "Deploy")):
        actions = as_list(statement["Action"])
        resources = as_list(resolve(statement["Resource"], pipeline))
        if not any(a.startswith("cloudformation:") for a in actions):
            continue
        assert all(a.startswith("cloudformation:") for a in actions)
        if resources == [SAM_TRANSFORM]:
            assert actions == ["cloudformation:CreateChangeSet"]
            continue
        assert resources == [stack]
        if "cloudformation:CreateChangeSet" in actions:
            assert statement["Condition"] == {
                "StringEquals": {"cloudformation:RoleArn": {"Fn::GetAtt": [role_id(stage, "Execution"), "Arn"]}}
            }


@pytest.mark.parametrize("stage", STAGES)
def test_the_deploy_role_publishes_and_smoke_tests_exactly_the_stages_exports(
    pipeline: dict[str, Any], stage: str
) -> None:
    imported = set(
        re.findall(r'"Fn::ImportValue": "([^"]+)"', json.dumps(pipeline["Resources"][role_id(stage, "Deploy")]))
    )
    assert imported == {f"photosky-{stage}-{name}" for name in ("SpaBucketName", "SpaDistributionId", "UserPoolArn")}
    assert imported <= stage_exports()
    pool = resolve({"Fn::ImportValue": f"photosky-{stage}-UserPoolArn"}, pipeline)
    cognito = [s for s in statements(pipeline, role_id(stage, "Deploy")) if "cognito-idp" in json.dumps(s["Action"])]
    assert [(sorted(s["Action"]), resolve(s["Resource"], pipeline)) for s in cognito] == [
        (
            sorted(
                [
                    "cognito-idp:AdminCreateUser",
                    "cognito-idp:AdminSetUserPassword",
                    "cognito-idp:AdminGetUser",
                    "cognito-idp:AdminDeleteUser",
                ]
            ),
            pool,
        )
    ]


def test_the_smoke_test_needs_no_more_than_the_deploy_role_grants(pipeline: dict[str, Any]) -> None:
    # ops/smoke.py states the IAM it needs in its docstring; all of it must be in the deploy role.
    source = (PROJECT_DIR / "ops" / "smoke.py").read_text()
    needed = {f"cognito-idp:{name}" for name in re.findall(r"\b(Admin[A-Z]\w+)\b", source)}
    assert needed, "ops/smoke.py names no Cognito admin call"
    assert needed <= granted(pipeline, "DevDeployRole")


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_reads_and_writes_only_its_own_artifacts(pipeline: dict[str, Any], stage: str) -> None:
    bucket = f"arn:aws:s3:::photosky-pipeline-artifacts-{ACCOUNT}-{REGION}"
    for kind in ("Deploy", "Execution"):
        artifacts = [
            resource
            for statement in statements(pipeline, role_id(stage, kind))
            for resource in as_list(resolve(statement["Resource"], pipeline))
            if resource.startswith(bucket)
        ]
        assert artifacts == [f"{bucket}/{stage}/*"], kind


def test_the_artifacts_bucket_is_private_encrypted_tls_only_and_expires(pipeline: dict[str, Any]) -> None:
    bucket = pipeline["Resources"]["ArtifactsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] >= 365  # a rollback needs the previous deploy's code
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    (deny,) = pipeline["Resources"]["ArtifactsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- the roles: against AWS's data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["DevDeployRole", "DevExecutionRole", "ProdDeployRole", "ProdExecutionRole"])
def test_every_grant_is_scoped_as_narrowly_as_iam_allows(pipeline: dict[str, Any], role: str) -> None:
    assert scoping_problems(pipeline, role) == []


def test_a_grant_on_the_wrong_kind_of_resource_is_caught(pipeline: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(pipeline))
    first = broken["Resources"]["DevExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    first.append({"Sid": "Wrong", "Effect": "Allow", "Action": "sqs:CreateQueue", "Resource": "*"})
    first.append(
        {
            "Sid": "Wrong2",
            "Effect": "Allow",
            "Action": "s3:CreateBucket",
            "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q",
        }
    )
    problems = scoping_problems(broken, "DevExecutionRole")
    assert problems == [
        "Wrong: sqs:CreateQueue can be scoped to ['queue'], not '*'",
        f"Wrong2: s3:CreateBucket acts on none of ['arn:aws:sqs:{REGION}:{ACCOUNT}:q']",
        f"Wrong2: no action acts on arn:aws:sqs:{REGION}:{ACCOUNT}:q",
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_dev_and_prod_roles_name_their_own_stage_only(pipeline: dict[str, Any], stage: str) -> None:
    other = "prod" if stage == "dev" else "dev"
    for kind in ("Deploy", "Execution"):
        for statement in statements(pipeline, role_id(stage, kind)):
            assert other not in json.dumps(statement), (kind, statement["Sid"])
            for raw in as_list(statement["Resource"]):
                imported = re.findall(r'"Fn::ImportValue": "([^"]+)"', json.dumps(raw))
                if imported:  # the stage stack's exports (their names are pinned by another test)
                    assert all(name.startswith(f"photosky-{stage}-") for name in imported), imported
                    continue
                resource = resolve(raw, pipeline)
                # "*" and the transform are checked by the scoping test; everything else names the stage.
                assert (
                    resource in ("*", SAM_TRANSFORM, *AWS_ASSIGNED_IDS)
                    or f"photosky-{stage}-" in resource  # its resources
                    or f"photosky-pipeline-{stage}-" in resource  # its execution role
                    # its artifacts, its stack, its table
                    or resource.endswith((f"/{stage}/*", f":stack/photosky-{stage}/*", f":table/photosky-{stage}"))
                ), (kind, statement["Sid"], resource)


@pytest.mark.parametrize("role", ["DevDeployRole", "DevExecutionRole", "ProdDeployRole", "ProdExecutionRole"])
def test_the_roles_policies_fit_iams_size_limit(pipeline: dict[str, Any], role: str) -> None:
    assert rendered_policy_size(pipeline, role) < INLINE_POLICY_LIMIT


@pytest.mark.parametrize("stage", STAGES)
def test_the_execution_role_may_pass_roles_to_lambda_only(pipeline: dict[str, Any], stage: str) -> None:
    passes = [s for s in statements(pipeline, role_id(stage, "Execution")) if "iam:PassRole" in as_list(s["Action"])]
    assert [(resolve(s["Resource"], pipeline), s["Condition"]) for s in passes] == [
        (
            f"arn:aws:iam::{ACCOUNT}:role/photosky-{stage}-*",
            {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
        )
    ]


def test_the_execution_role_serves_exactly_the_services_of_the_stage_template(
    pipeline: dict[str, Any], stage_types: set[str]
) -> None:
    namespaces = {resource_type.split("::")[1] for resource_type in stage_types}
    assert namespaces <= set(IAM_PREFIX), f"give these the IAM prefix: {namespaces - set(IAM_PREFIX)}"
    services = {action.split(":", maxsplit=1)[0] for action in granted(pipeline, "DevExecutionRole")}
    assert services == {IAM_PREFIX[namespace] for namespace in namespaces}


def folded(actions: set[str]) -> set[str]:
    """IAM action names compare case-insensitively (AWS::ApiGatewayV2::Api's schema asks for `s3:getObject`)."""
    return {action.lower() for action in actions}


def needed_by_handlers(stage_types: set[str]) -> set[str]:
    return {
        action
        for resource_type in stage_types
        for action in handler_permissions(resource_type)
        # Some schemas list API operation names that are not IAM actions (s3:DeleteBucketCors is authorized as
        # s3:PutBucketCORS); IAM and cfn-lint refuse those in a policy.
        if iam_action(action) is not None
    }


def test_the_execution_role_may_do_everything_the_stage_templates_handlers_need(
    pipeline: dict[str, Any], stage_types: set[str]
) -> None:
    needed = {
        action
        for action in needed_by_handlers(stage_types)
        if action.split(":", maxsplit=1)[0] not in UNUSED_SERVICES and action not in EXCLUDED_ACTIONS
    }
    has = folded(granted(pipeline, "DevExecutionRole"))
    missing = {action for action in needed if action.lower() not in has}
    assert not missing, sorted(missing)


def test_the_execution_role_grants_nothing_the_handlers_do_not_ask_for(
    pipeline: dict[str, Any], stage_types: set[str]
) -> None:
    asked = folded(needed_by_handlers(stage_types))
    extra = {action for action in granted(pipeline, "DevExecutionRole") if action.lower() not in asked}
    assert not extra, sorted(extra)


def test_every_exclusion_is_asked_for_by_a_handler_and_not_granted(
    pipeline: dict[str, Any], stage_types: set[str]
) -> None:
    # An entry nobody asks for any more is stale; one that is granted is not excluded.
    asked = {action for resource_type in stage_types for action in handler_permissions(resource_type)}
    assert set(EXCLUDED_ACTIONS) <= asked
    assert UNUSED_SERVICES.keys() <= {action.split(":", maxsplit=1)[0] for action in asked}
    assert not set(EXCLUDED_ACTIONS) & granted(pipeline, "DevExecutionRole")


def named_resources(stage_template: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(logical id, the ARN it will have, the handler action that creates it) for each resource of the stage whose
    ARN is known before creation: named in the template, or named by CloudFormation after the stack."""
    arn = {
        "AWS::S3::Bucket": ("BucketName", "arn:aws:s3:::{}", "s3:CreateBucket"),
        "AWS::SQS::Queue": ("QueueName", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{}}", "sqs:CreateQueue"),
        "AWS::DynamoDB::Table": (
            "TableName",
            f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{}}",
            "dynamodb:CreateTable",
        ),
        "AWS::Lambda::Function": (
            "FunctionName",
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{{}}",
            "lambda:CreateFunction",
        ),
        "AWS::Lambda::LayerVersion": (
            "LayerName",
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{{}}",
            "lambda:PublishLayerVersion",
        ),
        "AWS::CloudWatch::Alarm": (
            "AlarmName",
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{{}}",
            "cloudwatch:PutMetricAlarm",
        ),
        # Secrets Manager appends a random suffix to the name.
        "AWS::SecretsManager::Secret": (
            "Name",
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{{}}-AbCdEf",
            "secretsmanager:CreateSecret",
        ),
        "AWS::CloudFront::Function": (
            "Name",
            f"arn:aws:cloudfront::{ACCOUNT}:function/{{}}",
            "cloudfront:UpdateFunction",
        ),
        "AWS::IAM::Role": ("RoleName", f"arn:aws:iam::{ACCOUNT}:role/{{}}", "iam:CreateRole"),
        "AWS::Events::Rule": ("Name", f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{{}}", "events:PutRule"),
    }
    for logical_id, resource in stage_template["Resources"].items():
        if resource["Type"] not in arn:
            continue
        name_property, arn_format, action = arn[resource["Type"]]
        name = resource["Properties"].get(name_property)
        if name is None:
            # CloudFormation's generated name: <stack>-<logical id>-<suffix>.
            name = f"photosky-dev-{logical_id[:30]}-1A2B3C4D5E6F"
        elif not isinstance(name, str):
            name = re.sub(
                r"\$\{([^}]+)\}",
                lambda m: {"Stage": "dev", "AWS::AccountId": ACCOUNT, "AWS::Region": REGION}[m.group(1)],
                name["Fn::Sub"],
            )
        yield logical_id, arn_format.format(name), action


def test_the_execution_role_may_create_every_named_resource_of_the_stage(
    pipeline: dict[str, Any], stage_template: dict[str, Any]
) -> None:
    found = list(named_resources(stage_template))
    assert {logical_id for logical_id, _, _ in found} >= {"PhotoBucket", "PhotoTable", "UploadsQueue", *FUNCTION_NAMES}
    for logical_id, arn, action in found:
        assert any(
            action in as_list(statement["Action"])
            and any(iam_matches(pattern, arn) for pattern in as_list(resolve(statement["Resource"], pipeline)))
            for statement in statements(pipeline, "DevExecutionRole")
        ), f"{logical_id}: {action} on {arn}"
