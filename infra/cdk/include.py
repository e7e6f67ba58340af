"""What the CDK stack does to `infra.package`'s template before `CfnInclude` reads it (no CDK import: cheap to test).

`CfnInclude` resolves every `Ref` against the template's own logical ids, and refuses the ones SAM alone resolves:
`<Function>.Alias` and `<Function>.Version`, the resources AutoPublishAlias generates (infra.package points API
Gateway at `APIHandler.Alias`, the SnapStart alias). A property holding one is included as a placeholder of the same
JSON kind (the CDK checks the L1 property's type) and set back verbatim as a property override, which the CDK
writes out without resolving. Each function's and layer's local zip becomes a CDK asset named by its content
(`content_digest`).
"""

from __future__ import annotations

import copy
import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any

from infra.package import PackagingError

# A Ref target with a dot is never a logical id (those are alphanumeric): it names a resource SAM generates.
_SAM_GENERATED = re.compile(r"^[A-Za-z0-9]+\.(Alias|Version)$")
# Where each SAM resource type holds its code; infra.package leaves local zip paths there.
CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def _refers_to_sam_generated(value: Any) -> bool:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and isinstance(value["Ref"], str) and _SAM_GENERATED.match(value["Ref"]):
            return True
        return any(_refers_to_sam_generated(item) for item in value.values())
    if isinstance(value, list):
        return any(_refers_to_sam_generated(item) for item in value)
    return False


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::"))
    )


def _placeholder(value: Any) -> Any:
    """A stand-in the L1 property accepts: an empty object for a plain object (an OpenAPI body), else a string (an
    intrinsic stands for a string: a function name, an ARN)."""
    if isinstance(value, dict) and not _is_intrinsic(value):
        return {}
    if isinstance(value, list):
        return []
    return "set-verbatim-after-include"


def split_sam_references(template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(a copy `CfnInclude` accepts, {logical id: {property: its original value}} to set back as overrides)."""
    includable = copy.deepcopy(template)
    verbatim: dict[str, dict[str, Any]] = {}
    for logical_id, resource in includable["Resources"].items():
        properties = resource.get("Properties", {})
        for name, value in properties.items():
            if _refers_to_sam_generated(value):
                verbatim.setdefault(logical_id, {})[name] = value
                properties[name] = _placeholder(value)
    return includable, verbatim


def local_code(template: dict[str, Any], base_dir: Path) -> dict[tuple[str, str], Path]:
    """{(logical id, code property): the zip it names} for every function and layer. Each must name a zip that
    exists under `base_dir`: anything else (an S3 location, a missing file) would leave code the stack cannot ship."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        prop = CODE_PROPERTIES.get(resource.get("Type", ""))
        if prop is None:
            continue
        value = resource.get("Properties", {}).get(prop)
        if not isinstance(value, str) or "://" in value:
            raise PackagingError(f"{logical_id}.{prop} is {value!r}, not a local zip infra.package built")
        path = (base_dir / value).resolve()
        if not path.is_file() or base_dir.resolve() not in path.parents:
            raise PackagingError(f"{logical_id}.{prop} names {value}, which is not a file of {base_dir}")
        found[(logical_id, prop)] = path
    return found


# A .pyc's header: magic number (the Python version), flags (the invalidation mode) and, for hash-based bytecode,
# the SipHash of its source.
_PYC_HEADER = 16


def content_digest(zip_path: Path) -> str:
    """A zip's identity by what it holds, not by the zip's own bytes: infra.package rebuilds its zips on every run
    with new timestamps, and the CDK's default asset hash (of the file) would then upload the code and update every
    function, publishing a new SnapStart version, on each deploy.

    Each member counts by its name and bytes, but bytecode by its name and header only: marshal's output depends on
    the compiling process's state (which objects it shares), so the same source compiled by two processes can give
    other bytes, while the header pins the interpreter, the invalidation mode and the source itself."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(zip_path) as archive:
        for member in sorted(archive.infolist(), key=lambda info: info.filename):
            data = archive.read(member)
            if member.filename.endswith(".pyc"):
                data = data[:_PYC_HEADER]
            digest.update(member.filename.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()
