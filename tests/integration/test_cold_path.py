"""What `import app` costs a cold Lambda: no image or JWT libraries, and no AWS client built at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import POOL, PROJECT_DIR, stage_environment

# The start of a probe that lists, in `created`, every botocore client made after it (AWS service names).
RECORDING_CLIENTS = """
import json, sys
import botocore.session

created = []
real_create_client = botocore.session.Session.create_client

def create_client(self, service_name, *args, **kwargs):
    created.append(service_name)
    return real_create_client(self, service_name, *args, **kwargs)

botocore.session.Session.create_client = create_client
"""

# Run in a fresh interpreter with only what Lambda would set: the stage's variables and the runtime's own.
PROBE = """
import json, sys
import botocore.session

def refuse(*args, **kwargs):
    raise AssertionError("a boto3/botocore client was created while importing app.py")

botocore.session.Session.create_client = refuse
import app
banned = {"PIL", "pillow_heif", "jwt", "cryptography", "moto", "devstack"}
heavy = sorted(m for m in sys.modules if m.split(".")[0] in banned)
# The album code is registered lazily and runs only when an album route or a photo delete first needs it.
albums_run = sorted(
    name for name, module in sys.modules.items()
    if name.startswith("chalicelib.albums.") and type(module).__name__ != "_LazyModule"
)
import gc
print(json.dumps({"heavy": heavy, "albums_run": albums_run, "routes": sorted(app.app.routes),
                  "gc": [gc.isenabled(), gc.get_freeze_count() > 0]}))
"""


# What the API's clients cost to build is mostly botocore reading its data: one session holds one loader, which
# caches what it read. A session per client re-read endpoints.json (1.2 MB), partitions, the default configuration
# and the list of services for every client, and registered every handler again.
LOADER_PROBE = """
import collections, json
import botocore.loaders, botocore.session

files = collections.Counter()
sessions = []
real_load_file = botocore.loaders.JSONFileLoader.load_file
real_init = botocore.session.Session.__init__

def load_file(self, file_path):
    files[file_path] += 1
    return real_load_file(self, file_path)

def init(self, *args, **kwargs):
    sessions.append(self)
    real_init(self, *args, **kwargs)

botocore.loaders.JSONFileLoader.load_file = load_file
botocore.session.Session.__init__ = init
import app
from chalicelib import deps
deps.photo_service()
deps.user_service()
deps.secrets_manager()
deps.s3()
print(json.dumps({"sessions": len(sessions), "files": files}))
"""

# A photo list through the CDN: the URLs are signed in pure Python, so no S3 client and no crypto library.
CDN_PROBE = (
    RECORDING_CLIENTS
    + """
import app
from chalicelib import deps
deps.dynamodb()
deps.photo_service()
from chalicelib.photos.models import PreviewFormat
urls = deps.media().urls("u", "p", preview_format=PreviewFormat.WEBP, viewer="u", original=True, filename="a.jpg")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"cryptography", "jwt", "PIL"})
print(json.dumps({"clients": created, "heavy": heavy, "small": urls.small}))
"""
)

CURSOR_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:photosky-dev-cursor-AbCdEf"


def lambda_like_environment(stage: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "photosky-dev",
        **stage_environment(stage),
        "BUCKET_NAME": "photosky-dev-photos",
        "COGNITO_USER_POOL_ARN": POOL.arn,
    }


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter in the project, as a Lambda container starts one."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_the_app_loads_no_heavy_library_and_builds_no_client() -> None:
    result = run_python(PROBE, lambda_like_environment("dev"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["albums_run"] == []
    assert report["gc"] == [True, True]  # the collector is back on, the import's objects frozen out of it
    assert "/users/me" in report["routes"]


def test_a_missing_pool_arn_fails_the_import_with_a_clear_message() -> None:
    env = lambda_like_environment("dev")
    del env["COGNITO_USER_POOL_ARN"]
    result = run_python("import app", env)
    assert result.returncode != 0
    assert "COGNITO_USER_POOL_ARN is not set" in result.stderr


def test_every_client_comes_from_one_session_that_reads_botocore_data_once() -> None:
    result = run_python(
        LOADER_PROBE, {**lambda_like_environment("dev"), "PHOTOSKY_CURSOR_SECRET_ARN": CURSOR_SECRET_ARN}
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sessions"] == 1
    read_twice = {path: count for path, count in report["files"].items() if count > 1}
    assert read_twice == {}
    names = {path.rsplit("/", 1)[-1] for path in report["files"]}
    assert {"endpoints", "partitions", "sdk-default-configuration"} <= names
    services = {path.split("/data/", 1)[-1].split("/", 1)[0] for path in report["files"] if "/service-2" in path}
    assert services == {"dynamodb", "s3", "secretsmanager"}


def test_a_photo_list_through_the_cdn_builds_no_s3_client_and_loads_no_crypto_library() -> None:
    from tests.support.media import new_media_key_json

    env = {
        **lambda_like_environment("dev"),
        "PHOTOSKY_CURSOR_SECRET_ARN": CURSOR_SECRET_ARN,
        "PHOTOSKY_MEDIA_URL": "https://media.example",
        "PHOTOSKY_MEDIA_KEY": new_media_key_json(),
    }
    result = run_python(CDN_PROBE, env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["clients"] == ["dynamodb"]
    assert report["heavy"] == []
    assert report["small"].startswith("https://media.example/previews/u/p/small.webp?Policy=")


# SnapStart: Lambda's runtime provides snapshot_restore_py; a stand-in records what app.py registers.
SNAPSTART_PROBE = (
    RECORDING_CLIENTS
    + """
import botocore.endpoint
import snapshot_restore_py

def refuse(*args, **kwargs):
    raise AssertionError("an AWS call was made before the snapshot")

botocore.endpoint.Endpoint.make_request = refuse
import app
hooks = list(snapshot_restore_py.before)
for hook in hooks:
    hook()
print(json.dumps({"hooks": len(hooks), "clients": sorted(created)}))
"""
)


def test_under_snapstart_the_clients_and_services_are_built_before_the_snapshot_without_calling_aws(
    tmp_path: Path,
) -> None:

    (tmp_path / "snapshot_restore_py.py").write_text(
        "before = []\ndef register_before_snapshot(func, *args, **kwargs):\n    before.append(func)\n"
    )
    env = {
        **lambda_like_environment("dev"),
        "PHOTOSKY_CURSOR_SECRET_ARN": CURSOR_SECRET_ARN,
        "PHOTOSKY_MEDIA_URL": "https://media.example",
        "PHOTOSKY_MEDIA_KEY_SECRET_ARN": CURSOR_SECRET_ARN.replace("cursor", "media"),
        "PYTHONPATH": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    snapstart = run_python(SNAPSTART_PROBE, {**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"})
    assert snapstart.returncode == 0, snapstart.stderr
    report = json.loads(snapstart.stdout.strip().splitlines()[-1])
    assert report == {"hooks": 1, "clients": ["cognito-idp", "dynamodb", "s3", "secretsmanager"]}
    on_demand = run_python(SNAPSTART_PROBE, {**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"})
    assert on_demand.returncode == 0, on_demand.stderr
    assert json.loads(on_demand.stdout.strip().splitlines()[-1]) == {"hooks": 0, "clients": []}
