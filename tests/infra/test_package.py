"""The single-stack deployment for dev and prod, built by `python -m infra.package` and checked offline:
cfn-lint on the template and on its SAM-transformed form, PhotoSky's own rules, and the Lambda zip itself."""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib import keys
from chalicelib.web import ALLOWED_REQUEST_HEADERS as APP_ALLOWED_REQUEST_HEADERS
from infra import checks
from infra.package import (
    ALLOWED_REQUEST_HEADERS,
    CONCURRENCY_PARAMETERS,
    FUNCTION_NAMES,
    LAMBDA_PLATFORMS,
    PUBLIC_ROUTE_THROTTLING,
    SENTINEL_POOL_ARN,
    STAGES,
    THROTTLING,
    PackagingError,
    add_concurrency_parameters,
    check_deployment_zip,
    elf_machines,
    host_built_wheels,
    invoke_the_api_alias,
    method_setting_path,
    method_settings,
    native_code,
    package,
)

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
def test_every_route_but_health_and_the_share_link_ones_requires_the_cognito_authorizer(
    packaged: Packaged, stage: str
) -> None:
    template = packaged[stage][0]
    assert checks.unguarded_routes(template) == []
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    for path, method in checks.PUBLIC_ROUTES:
        assert "security" not in body["paths"][path][method], (method, path)
    providers = body["securityDefinitions"]["PhotoSkyUsers"]["x-amazon-apigateway-authorizer"]["providerARNs"]
    assert providers == [{"Fn::GetAtt": ["UserPool", "Arn"]}]


@pytest.mark.parametrize("stage", STAGES)
def test_no_policy_grants_wildcards(packaged: Packaged, stage: str) -> None:
    assert checks.wildcard_grants(packaged[stage][0]) == []


def statements_of(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template["Resources"][role]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def actions_of(template: dict[str, Any], role: str) -> set[str]:
    return {action for statement in statements_of(template, role) for action in statement["Action"]}


def grants_of(template: dict[str, Any], role: str, service: str) -> dict[str, set[str]]:
    """{resource (its Fn::Sub text): the actions of `service` granted on it} for one role; every statement Allows."""
    grants: dict[str, set[str]] = {}
    for statement in statements_of(template, role):
        assert statement["Effect"] == "Allow"
        actions = {action for action in statement["Action"] if action.startswith(f"{service}:")}
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources if actions else []:
            grants.setdefault(resource["Fn::Sub"], set()).update(actions)
    return grants


def role_of(template: dict[str, Any], function: str) -> str:
    role: str = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


TABLE_ARN = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/photosky-${Stage}"
INDEX_ARNS = {f"{TABLE_ARN}/index/GSI1", f"{TABLE_ARN}/index/GSI2"}
BUCKET_ARN = "arn:${AWS::Partition}:s3:::${PhotoBucket}"
# The bucket's three folders; nothing else is ever written there.
PHOTO_PREFIXES = ["uploads/*", "originals/*", "previews/*"]


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
    # The API lists only under the photo folders (account deletion's last sweep): see the test of that statement.
    # The worker queries the table only to find the owner's live connections (test_websocket_template), never an
    # index.
    assert set(grants_of(template, roles["ProcessUploads"], "dynamodb")) == {TABLE_ARN}
    assert "dynamodb:BatchGetItem" not in worker
    assert "dynamodb:BatchWriteItem" not in worker  # only account deletion writes in batches
    assert not any(action.startswith("cognito-idp:") for action in worker | reconciler)


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_may_look_up_users_in_its_own_user_pool_and_nothing_more(packaged: Packaged, stage: str) -> None:
    # Sharing an album finds the user by name: AdminGetUser on the pool the stack creates, the one whose ARN the
    # API reads (COGNITO_USER_POOL_ARN) and whose tokens its authorizer trusts. No other Cognito action, no other pool.
    template = packaged[stage][0]
    statements = [
        s
        for s in statements_of(template, role_of(template, "APIHandler"))
        if any(a.startswith("cognito-idp:") for a in s["Action"])
    ]
    assert statements == [
        {
            "Sid": "FindUsersToShareAlbumsWith",
            "Effect": "Allow",
            "Action": ["cognito-idp:AdminGetUser"],
            "Resource": {"Fn::Sub": "${UserPool.Arn}"},
        }
    ]
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["COGNITO_USER_POOL_ARN"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    assert template["Resources"]["UserPool"]["Type"] == "AWS::Cognito::UserPool"


# DynamoDB authorizes TransactWriteItems per item: each Put, Update and Delete by PutItem, UpdateItem and DeleteItem,
# each ConditionCheck by ConditionCheckItem. There is no dynamodb:TransactWriteItems action to grant (cfn-lint's
# W3037 refuses it, and the packaged template passes cfn-lint). An index can only be queried (or scanned).
API_TABLE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    # Deleting an account removes what is left of it in batches (up to 25 deletes a request).
    "dynamodb:BatchWriteItem",
}


def index_grants(actions: set[str]) -> dict[str, set[str]]:
    return dict.fromkeys(INDEX_ARNS, actions)


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_reads_and_writes_only_the_table_and_queries_its_index(packaged: Packaged, stage: str) -> None:
    template = packaged[stage][0]
    assert grants_of(template, role_of(template, "APIHandler"), "dynamodb") == {
        TABLE_ARN: API_TABLE_ACTIONS,
        **index_grants({"dynamodb:Query"}),
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_reconciler_may_finish_album_deletions_on_the_table_only(packaged: Packaged, stage: str) -> None:
    # Settling abandoned uploads as before, plus deleting an album's entries, members and links in transactions
    # that check the album (ConditionCheckItem), after finding them (Query, on the index too) and reading the
    # photos they name (BatchGetItem). Purging the trash and finishing account deletions (BatchWriteItem) likewise.
    template = packaged[stage][0]
    assert grants_of(template, role_of(template, "ReleaseAbandonedUploads"), "dynamodb") == {
        TABLE_ARN: API_TABLE_ACTIONS,
        **index_grants({"dynamodb:Query"}),
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_may_list_the_bucket_only_under_the_photo_folders(packaged: Packaged, stage: str) -> None:
    # Deleting an account ends by listing the user's folders to find anything left behind. Listing is a bucket
    # action, so the statement names the bucket and a condition keeps it to the three folders: a listing without a
    # prefix, or of any other one, is refused. (The API never HEADs objects; the worker and the reconciler do, and
    # keep their unconditional ListBucket so a missing object is a 404, not a 403.)
    template = packaged[stage][0]
    statements = [s for s in statements_of(template, role_of(template, "APIHandler")) if "s3:ListBucket" in s["Action"]]
    assert statements == [
        {
            "Sid": "FindWhatADeletedAccountLeftInTheBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": {"Fn::Sub": BUCKET_ARN},
            "Condition": {"StringLike": {"s3:prefix": PHOTO_PREFIXES}},
        }
    ]
    # ... and they cover every prefix the app lists for a user (IAM's StringLike `*` matches `/` too).
    for prefix in keys.user_object_prefixes("0f1e2d3c-user"):
        assert any(fnmatch.fnmatchcase(prefix, pattern) for pattern in PHOTO_PREFIXES), prefix


@pytest.mark.parametrize("function", ["APIHandler", "ReleaseAbandonedUploads"])
def test_the_api_and_reconciler_may_delete_every_object_of_a_user(packaged: Packaged, function: str) -> None:
    # The trash purge and account deletion run in both: each photo's upload, original and previews.
    template = packaged["dev"][0]
    grants = grants_of(template, role_of(template, function), "s3")
    for prefix in PHOTO_PREFIXES:
        assert "s3:DeleteObject" in grants[f"{BUCKET_ARN}/{prefix}"], prefix


@pytest.mark.parametrize("stage", STAGES)
def test_the_worker_keeps_its_four_item_actions_and_queries_for_connections_on_the_table(
    packaged: Packaged, stage: str
) -> None:
    # A settled photo is pushed to every connection of its owner: one Query of their partition (live status).
    template = packaged[stage][0]
    assert grants_of(template, role_of(template, "ProcessUploads"), "dynamodb") == {
        TABLE_ARN: {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        }
    }


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


@pytest.mark.parametrize("stage", STAGES)
def test_the_trash_keeps_photos_thirty_days_in_every_stage(packaged: Packaged, stage: str) -> None:
    # The API dates a trashed photo's purge and the scheduled job purges it: both must read the same setting.
    resources = packaged[stage][0]["Resources"]
    for name in ("APIHandler", "ReleaseAbandonedUploads"):
        assert resources[name]["Properties"]["Environment"]["Variables"]["PHOTOSKY_TRASH_DAYS"] == "30", name


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
    assert resources["ImageLibrariesLayer"]["Properties"]["CompatibleArchitectures"] == ["arm64"]
    layered = {name for name, r in resources.items() if "Layers" in r.get("Properties", {})}
    assert layered == {"ProcessUploads", "ReleaseAbandonedUploads"}
    assert resources["ProcessUploads"]["Properties"]["Layers"] == [{"Ref": "ImageLibrariesLayer"}]


FUNCTIONS = tuple(FUNCTION_NAMES)  # the WebSocket API's three functions too


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_runs_on_arm64(packaged: Packaged, stage: str) -> None:
    resources = packaged[stage][0]["Resources"]
    for name in FUNCTIONS:
        assert resources[name]["Properties"]["Architectures"] == ["arm64"], name


def test_the_image_layer_is_native_code_for_arm64_only(packaged: Packaged) -> None:
    # Pillow and pillow-heif are C extensions: each shared library must be aarch64, read from its ELF header.
    assert all(platform.endswith("_aarch64") for platform in LAMBDA_PLATFORMS)
    layer_zip = packaged["dev"][1].with_name("image-layer.zip")
    machines = elf_machines(layer_zip)
    assert any("PIL/_imaging" in name for name in machines)
    assert any("pillow_heif" in name for name in machines)
    assert set(machines.values()) == {"aarch64"}
    with zipfile.ZipFile(layer_zip) as archive:
        tags = [
            line.split(":", 1)[1].strip()
            for name in archive.namelist()
            if name.endswith(".dist-info/WHEEL")
            for line in archive.read(name).decode().splitlines()
            if line.startswith("Tag:")
        ]
    assert tags
    assert all(tag.endswith(("_aarch64", "-any")) for tag in tags), tags


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_zip_holds_no_native_code(packaged: Packaged, stage: str) -> None:
    # Chalice packages x86_64 wheels for requirements.txt: anything native there would not load on arm64.
    assert native_code(packaged[stage][1]) == []


def test_native_code_in_the_api_zip_is_refused(tmp_path: Path) -> None:
    zip_path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("app.py", "")
        archive.writestr("_cffi_backend.cpython-312-x86_64-linux-gnu.so", b"\x7fELF")
        archive.writestr("libs/libfoo.so.1.2", b"\x7fELF")
    assert native_code(zip_path) == ["_cffi_backend.cpython-312-x86_64-linux-gnu.so", "libs/libfoo.so.1.2"]
    with pytest.raises(PackagingError, match="native code"):
        check_deployment_zip(zip_path)


def test_a_manylinux_wheel_for_x86_64_is_caught(tmp_path: Path) -> None:
    zip_path = tmp_path / "layer.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("pillow-13.0.0.dist-info/WHEEL", "Tag: cp312-cp312-manylinux_2_28_x86_64\n")
        archive.writestr("pillow_heif-1.8.1.dist-info/WHEEL", "Tag: cp312-cp312-manylinux_2_28_aarch64\n")
    assert host_built_wheels(zip_path) == ["pillow-13.0.0.dist-info (cp312-cp312-manylinux_2_28_x86_64)"]
    with pytest.raises(PackagingError, match="will not load"):
        check_deployment_zip(zip_path)


def elf_header(machine: int) -> bytes:
    """The first 20 bytes of a little-endian 64-bit ELF shared object for `machine` (e_machine)."""
    return b"\x7fELF\x02\x01\x01" + bytes(9) + (3).to_bytes(2, "little") + machine.to_bytes(2, "little")


def test_the_machine_of_a_native_library_is_read_from_its_elf_header(tmp_path: Path) -> None:
    zip_path = tmp_path / "layer.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("python/PIL/_imaging.cpython-312-aarch64-linux-gnu.so", elf_header(183))
        archive.writestr("python/PIL/_webp.cpython-312-x86_64-linux-gnu.so", elf_header(62))
        archive.writestr("python/PIL/Image.py", "")
    assert elf_machines(zip_path) == {
        "python/PIL/_imaging.cpython-312-aarch64-linux-gnu.so": "aarch64",
        "python/PIL/_webp.cpython-312-x86_64-linux-gnu.so": "x86_64",
    }


# --- SnapStart: API Gateway invokes a published version of the API through its alias -------------------------------


def integration_uris(body: dict[str, Any]) -> list[Any]:
    return [
        operation["x-amazon-apigateway-integration"]["uri"]
        for operations in body["paths"].values()
        for operation in operations.values()
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_publishes_snapstart_versions_under_an_alias(packaged: Packaged, stage: str) -> None:
    resources = packaged[stage][0]["Resources"]
    api = resources["APIHandler"]["Properties"]
    assert api["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert api["AutoPublishAlias"] == "live"
    assert api["AutoPublishAliasAllProperties"] is True  # any change to the function reaches the alias
    assert api["VersionDeletionPolicy"] == "Delete"  # superseded versions (and their billed snapshots) go
    # SnapStart does not combine with provisioned concurrency, EFS or more than 512 MB of ephemeral storage.
    assert "ProvisionedConcurrencyConfig" not in api
    assert "FileSystemConfigs" not in api
    assert api.get("EphemeralStorage", {}).get("Size", 512) <= 512
    for name in ("ProcessUploads", "ReleaseAbandonedUploads"):
        assert "SnapStart" not in resources[name]["Properties"], name
        assert "AutoPublishAlias" not in resources[name]["Properties"], name
    body = resources["RestAPI"]["Properties"]["DefinitionBody"]
    uris = integration_uris(body)
    assert uris
    for uri in uris:
        text, variables = uri["Fn::Sub"]
        assert text.endswith("/functions/${ApiHandlerLiveAlias}/invocations")
        assert variables == {"ApiHandlerLiveAlias": {"Ref": "APIHandler.Alias"}}
    assert resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == {"Ref": "APIHandler.Alias"}


def test_the_deployed_api_gateway_invokes_the_alias_never_latest(packaged: Packaged) -> None:
    # What CloudFormation receives after the SAM transform: one alias on a published version, and every
    # integration and the invoke permission naming it.
    transformed = checks.sam_transform(packaged["prod"][0], {"Stage": "prod"})
    resources = transformed["Resources"]
    (alias_id,) = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Alias"]
    alias = resources[alias_id]["Properties"]
    assert alias["Name"] == "live"
    assert alias["FunctionName"] == {"Ref": "APIHandler"}
    (version_id,) = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Version"]
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    assert resources[version_id]["DeletionPolicy"] == "Delete"
    assert resources["APIHandler"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    (api,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    for uri in integration_uris(api["Body"]):
        assert uri["Fn::Sub"][1] == {"ApiHandlerLiveAlias": {"Ref": alias_id}}
        assert "APIHandler.Arn" not in json.dumps(uri)
    assert resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == {"Ref": alias_id}


def test_an_integration_that_does_not_name_the_api_function_is_refused() -> None:
    def body(**uris: str) -> dict[str, Any]:
        """An OpenAPI body with one GET per path, integrated with the given URI."""
        paths: dict[str, Any] = {}
        for path, uri in uris.items():
            paths[f"/{path}"] = {"get": {"x-amazon-apigateway-integration": {"uri": {"Fn::Sub": uri}}}}
        return {"paths": paths}

    chalices = "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${APIHandler.Arn}/x"
    invoke_the_api_alias(body(a=chalices), {"FunctionName": {"Ref": "APIHandler"}})
    with pytest.raises(PackagingError, match="GET /b"):
        invoke_the_api_alias(body(a=chalices, b="arn:...:function:other"), {"FunctionName": {"Ref": "APIHandler"}})
    with pytest.raises(PackagingError, match="APIHandlerInvokePermission"):
        invoke_the_api_alias(body(a=chalices), {"FunctionName": {"Ref": "Other"}})


# --- media --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_only_the_api_signs_media_urls_for_the_spas_distribution(packaged: Packaged, stage: str) -> None:
    template = packaged[stage][0]
    resources = template["Resources"]
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["PHOTOSKY_MEDIA_URL"] == template["Outputs"]["SpaUrl"]["Value"]
    assert variables["PHOTOSKY_MEDIA_KEY_SECRET_ARN"] == {"Ref": "MediaSigningKey"}
    assert "PHOTOSKY_MEDIA_KEY" not in variables  # the key itself never sits in Lambda settings
    for name in ("ProcessUploads", "ReleaseAbandonedUploads"):
        worker = resources[name]["Properties"]["Environment"]["Variables"]
        assert not [variable for variable in worker if variable.startswith("PHOTOSKY_MEDIA")], name


def secret_arn(name: str) -> str:
    """A secret's ARN as Secrets Manager makes it: its name, a hyphen and six random characters."""
    return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-Ab1Cd2"


def substituted(pattern: str, stage: str) -> str:
    names = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "Stage": stage}
    return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], pattern)


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_may_read_the_media_signing_key_and_no_other_secret_beyond_the_cursor_key(
    packaged: Packaged, stage: str
) -> None:
    template = packaged[stage][0]
    grants = grants_of(template, role_of(template, "APIHandler"), "secretsmanager")
    assert all(actions == {"secretsmanager:GetSecretValue"} for actions in grants.values())
    patterns = [substituted(pattern, stage) for pattern in grants]
    name = substituted(template["Resources"]["MediaSigningKey"]["Properties"]["Name"]["Fn::Sub"], stage)

    def readable(arn: str) -> list[str]:
        return [p for p in patterns if fnmatch.fnmatchcase(arn, p)]

    assert len(readable(secret_arn(name))) == 1
    assert len(readable(secret_arn(f"photosky-{stage}-cursor-secret"))) == 1
    # `??????` is exactly Secrets Manager's suffix: no other secret whose name merely starts the same.
    assert readable(secret_arn(f"{name}-copy")) == []
    other_stage = "prod" if stage == "dev" else "dev"
    assert readable(secret_arn(f"photosky-{other_stage}-media-signing-key")) == []


def test_the_key_slot_rule_reaches_the_packaged_template(packaged: Packaged) -> None:
    template = packaged["dev"][0]
    assert "MediaSigningKeyGiven" in template["Rules"]
    assert {"MediaPublicKeyA", "MediaPublicKeyB"} <= set(template["Parameters"])


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


def test_an_action_iam_does_not_have_fails_cfn_lint(packaged: Packaged) -> None:
    # Why no role grants dynamodb:TransactWriteItems: IAM has no such action (transactions are authorized per item).
    # cfn-lint checks actions on the SAM-transformed template, which test_the_sam_transformed_... lints clean.
    broken = copy.deepcopy(packaged["dev"][0])
    role = broken["Resources"]["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (table_statement,) = [s for s in role if "dynamodb:ConditionCheckItem" in s["Action"]]
    table_statement["Action"].append("dynamodb:TransactWriteItems")
    problems = checks.cfn_lint(checks.sam_transform(broken, {"Stage": "dev"}))
    assert any(p.startswith("W3037 Resources/ApiHandlerRole") and "transactwriteitems" in p for p in problems)


def test_a_route_without_the_authorizer_is_caught(packaged: Packaged) -> None:
    broken = copy.deepcopy(packaged["dev"][0])
    del broken["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]["/photos"]["get"]["security"]
    assert checks.unguarded_routes(broken) == ["GET /photos"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_stage_is_throttled_per_stage(packaged: Packaged, stage: str) -> None:
    settings = packaged[stage][0]["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert (settings[0]["ResourcePath"], settings[0]["HttpMethod"]) == ("/*", "*")
    assert (settings[0]["ThrottlingRateLimit"], settings[0]["ThrottlingBurstLimit"]) == THROTTLING[stage]


@pytest.mark.parametrize("stage", STAGES)
def test_the_share_link_routes_have_their_own_lower_throttling(packaged: Packaged, stage: str) -> None:
    template = packaged[stage][0]
    settings = template["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    own = {
        (s["ResourcePath"], s["HttpMethod"]): (s["ThrottlingRateLimit"], s["ThrottlingBurstLimit"]) for s in settings
    }
    assert own == {
        ("/*", "*"): THROTTLING[stage],
        ("/~1public~1albums~1{token}", "GET"): PUBLIC_ROUTE_THROTTLING[("/public/albums/{token}", "GET")][stage],
        ("/~1public~1albums~1{token}~1unlock", "POST"): PUBLIC_ROUTE_THROTTLING[
            ("/public/albums/{token}/unlock", "POST")
        ][stage],
    }
    assert len(settings) == len(own)
    # Every route callable without a token but the health check is capped below the stage default, and unlock
    # (an scrypt hash per call) below the album page.
    assert checks.public_routes_without_their_own_throttle(template) == []
    page = own[("/~1public~1albums~1{token}", "GET")]
    unlock = own[("/~1public~1albums~1{token}~1unlock", "POST")]
    assert unlock[0] < page[0] < THROTTLING[stage][0]
    assert unlock[1] < page[1] < THROTTLING[stage][1]
    for rate, burst in own.values():
        assert burst >= rate  # a burst below the rate would refuse even a steady stream at the rate


def test_the_public_route_limits_reach_the_deployed_stage(packaged: Packaged) -> None:
    # SAM moves the API's MethodSettings onto the AWS::ApiGateway::Stage it creates; each names a path of the body.
    transformed = checks.sam_transform(packaged["prod"][0], {"Stage": "prod"})
    resources = transformed["Resources"]
    (stage,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert stage["MethodSettings"] == packaged["prod"][0]["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    (api,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    encoded = {method_setting_path(path): path for path in api["Body"]["paths"]}
    for setting in stage["MethodSettings"][1:]:
        assert setting["HttpMethod"].lower() in api["Body"]["paths"][encoded[setting["ResourcePath"]]]


def test_a_method_setting_path_encodes_every_slash() -> None:
    # AWS::ApiGateway::Stage MethodSetting: "/resource/subresource" is written "/~1resource~1subresource".
    assert method_setting_path("/resource/subresource") == "/~1resource~1subresource"
    assert method_setting_path("/public/albums/{token}/unlock") == "/~1public~1albums~1{token}~1unlock"


def test_packaging_refuses_an_api_without_a_throttled_public_route() -> None:
    # Renaming a public route must not leave it on the stage default unnoticed.
    paths = {path: {method.lower(): {}} for path, method in PUBLIC_ROUTE_THROTTLING}
    assert len(method_settings("dev", {"paths": paths})) == 1 + len(PUBLIC_ROUTE_THROTTLING)
    del paths["/public/albums/{token}/unlock"]
    with pytest.raises(PackagingError, match=r"POST /public/albums/\{token\}/unlock"):
        method_settings("dev", {"paths": paths})


def test_a_public_route_without_its_own_throttle_is_caught(packaged: Packaged) -> None:
    broken = copy.deepcopy(packaged["dev"][0])
    api = broken["Resources"]["RestAPI"]["Properties"]
    api["MethodSettings"] = [s for s in api["MethodSettings"] if s["HttpMethod"] != "POST"]
    api["DefinitionBody"]["paths"]["/public/export"] = {"get": {}}
    assert checks.public_routes_without_their_own_throttle(broken) == [
        "POST /public/albums/{token}/unlock: no throttling of its own",
        "GET /public/export: no throttling of its own",
    ]
    assert checks.unguarded_routes(broken) == ["GET /public/export"]


def test_a_public_route_throttled_at_the_stage_default_is_caught(packaged: Packaged) -> None:
    broken = copy.deepcopy(packaged["dev"][0])
    settings = broken["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    (page,) = [s for s in settings if s["HttpMethod"] == "GET"]
    page["ThrottlingBurstLimit"] = settings[0]["ThrottlingBurstLimit"]
    assert checks.public_routes_without_their_own_throttle(broken) == [
        "GET /public/albums/{token}: throttled no lower than the stage default"
    ]


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


def test_gateway_errors_allow_the_headers_the_app_allows(packaged: Packaged) -> None:
    # The gateway responses are the whole API's: the public routes' throttling 429s, and their 4XX/5XX, carry the
    # same CORS headers, and allow X-Link-Access (a password link's access token) like the app's own preflights.
    responses = packaged["dev"][0]["Resources"]["RestAPI"]["Properties"]["DefinitionBody"][
        "x-amazon-apigateway-gateway-responses"
    ]
    app_allows = {header.strip() for header in APP_ALLOWED_REQUEST_HEADERS.split(",")}
    assert set(ALLOWED_REQUEST_HEADERS) == app_allows
    assert "X-Link-Access" in app_allows
    for response_type, response in responses.items():
        allowed = response["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Headers"]
        assert allowed == f"'{allowed[1:-1]}'", response_type  # a static value, quoted
        assert set(allowed[1:-1].split(",")) == app_allows, response_type


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
    assert {path for path, _ in checks.PUBLIC_ROUTES} <= set(paths)
    for path, operations in paths.items():
        if path != "/health":
            assert operations["options"]["x-amazon-apigateway-integration"]["type"] == "aws_proxy", path
            assert "security" not in operations["options"], path


# Issue 17 (docs/SCALE.md): a burst of uploads must not take the account's concurrency from the API, and a stage
# at the target must be able to run more workers than standard mode reaches.
WORKER_SCALING = {
    "ScalingConfig": {
        "Fn::If": [
            "HasWorkerProvisionedPollers",
            {"Ref": "AWS::NoValue"},
            {"MaximumConcurrency": {"Ref": "WorkerMaximumConcurrency"}},
        ]
    },
    "ProvisionedPollerConfig": {
        "Fn::If": [
            "HasWorkerProvisionedPollers",
            {"MinimumPollers": 2, "MaximumPollers": {"Ref": "WorkerMaximumPollers"}},
            {"Ref": "AWS::NoValue"},
        ]
    },
}


@pytest.mark.parametrize("stage", STAGES)
def test_the_workers_event_source_is_capped_or_provisioned_by_stack_parameters(packaged: Packaged, stage: str) -> None:
    template = packaged[stage][0]
    sqs_events = [
        e for e in template["Resources"]["ProcessUploads"]["Properties"]["Events"].values() if e["Type"] == "SQS"
    ]
    assert [{name: e["Properties"][name] for name in WORKER_SCALING} for e in sqs_events] == [WORKER_SCALING]
    parameter = template["Parameters"]["WorkerMaximumConcurrency"]
    assert (parameter["Type"], parameter["Default"]) == ("Number", 200)
    # Standard mode unless asked: provisioned pollers are billed while they exist.
    pollers = template["Parameters"]["WorkerMaximumPollers"]
    assert (pollers["Type"], pollers["Default"], pollers["MinValue"]) == ("Number", 0, 0)
    assert template["Conditions"]["HasWorkerProvisionedPollers"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WorkerMaximumPollers"}, "0"]}]
    }
    # SAM carries both onto the event source mapping CloudFormation creates, where exactly one survives.
    transformed = checks.sam_transform(template, {"Stage": stage})
    mappings = [r for r in transformed["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert [{name: m["Properties"][name] for name in WORKER_SCALING} for m in mappings] == [WORKER_SCALING]


def test_the_worker_concurrency_parameter_allows_exactly_what_lambda_accepts() -> None:
    # A value Lambda refuses would fail the deploy halfway; the parameter's bounds refuse it before any change.
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::Lambda::EventSourceMapping").schema
    accepted = schema["definitions"]["MaximumConcurrency"]
    parameter = CONCURRENCY_PARAMETERS["WorkerMaximumConcurrency"]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (accepted["minimum"], accepted["maximum"])
    assert accepted["minimum"] <= parameter["Default"] <= accepted["maximum"]
    pollers = schema["definitions"]["ProvisionedPollerConfig"]["properties"]["MaximumPollers"]
    assert CONCURRENCY_PARAMETERS["WorkerMaximumPollers"]["MaxValue"] == pollers["maximum"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_api_reserves_concurrency_only_when_the_parameter_asks(packaged: Packaged, stage: str) -> None:
    template = packaged[stage][0]
    parameter = template["Parameters"]["ApiReservedConcurrency"]
    # Off by default: a reservation needs an account quota a fresh account may not have.
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 0, 0)
    assert template["Conditions"]["HasApiReservedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ApiReservedConcurrency"}, "0"]}]
    }
    reserved = {"Fn::If": ["HasApiReservedConcurrency", {"Ref": "ApiReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    resources = template["Resources"]
    assert resources["APIHandler"]["Properties"]["ReservedConcurrentExecutions"] == reserved
    for name in ("ProcessUploads", "ReleaseAbandonedUploads", "WebsocketConnect"):
        assert "ReservedConcurrentExecutions" not in resources[name]["Properties"], name
    transformed = checks.sam_transform(template, {"Stage": stage})
    functions = {name: r for name, r in transformed["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert functions["APIHandler"]["Properties"]["ReservedConcurrentExecutions"] == reserved


def test_a_template_already_defining_a_concurrency_parameter_is_refused() -> None:
    template: dict[str, Any] = {"Parameters": {"WorkerMaximumConcurrency": {"Type": "Number", "Default": 5}}}
    with pytest.raises(PackagingError, match="WorkerMaximumConcurrency is defined twice"):
        add_concurrency_parameters(template)
    fresh: dict[str, Any] = {"Parameters": {}}
    add_concurrency_parameters(fresh)
    assert set(fresh["Parameters"]) == {"WorkerMaximumConcurrency", "WorkerMaximumPollers", "ApiReservedConcurrency"}
    assert set(fresh["Conditions"]) == {"HasApiReservedConcurrency", "HasWorkerProvisionedPollers"}
