"""One stage's CDK stack: Chalice's construct, fed by `infra.package` (infra/cdk/__init__.py says why)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3_assets as assets
from chalice.cdk import Chalice
from constructs import Construct

from infra.cdk.include import content_digest, local_code, split_sam_references
from infra.package import PROJECT_DIR, package

# The CDK's template validation (cfn-lint's F1020) flags a Ref to a logical id the template does not declare; the
# SAM transform creates `APIHandler.Alias` at deploy time, so for the properties set verbatim that finding is moot.
_UNDECLARED_REF = "CloudFormation-Validate::F1020"


def stack_name(stage: str) -> str:
    """The single stack's name (README, Deploy): the same logical ids under the same name, so `cdk deploy` can take
    over a stage first deployed with `aws cloudformation deploy`, resource for resource."""
    return f"photosky-{stage}"


def _asset_id(zip_path: Path) -> str:
    """The construct's own id for Chalice's zip, a readable one for any other (image-layer.zip: ImageLayerCode)."""
    if zip_path.name == "deployment.zip":
        return "ChaliceAppCode"
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", zip_path.stem) if part) + "Code"


class PackagedChalice(Chalice):
    """`chalice.cdk.Chalice` whose package is `infra.package`'s: the construct calls `_package_app`, then includes the
    template `_generate_sam_template_with_assets` returns (chalice 1.34.0; requirements-cdk.txt pins it). Its other
    methods (`get_resource`, `get_function`, `get_role`, `add_environment_variable`) work as documented."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: str, build_dir: Path) -> None:
        self.photosky_stage = stage
        self.build_dir = build_dir.resolve()  # `chalice package` runs from the project's root
        self.verbatim: dict[str, dict[str, Any]] = {}
        super().__init__(scope, construct_id, source_dir=str(PROJECT_DIR))
        for logical_id, properties in self.verbatim.items():
            resource = self.get_resource(logical_id)
            for name, value in properties.items():
                resource.add_property_override(name, value)
            cdk.Validations.of(resource).acknowledge(
                cdk.Acknowledgment(
                    id=_UNDECLARED_REF, reason="a Ref to the alias SAM generates (APIHandler.Alias), set verbatim"
                )
            )

    def _package_app(self) -> None:
        """The single stack's build (policies, `chalice package`, wiring, bytecode, checks, image layer)."""
        self._sam_package_dir = str(self.build_dir)
        self.template_path = package(self.photosky_stage, self.build_dir)

    def _generate_sam_template_with_assets(self, chalice_out_dir: str, package_id: str) -> str:
        """The template with each local zip turned into a CDK asset (Chalice's construct does this for its own zip
        only), minus what CfnInclude cannot read (set back in __init__); returns the file to include."""
        template = json.loads(self.template_path.read_text())
        made: dict[Path, assets.Asset] = {}
        for (logical_id, prop), zip_path in local_code(template, self.build_dir).items():
            if zip_path not in made:
                made[zip_path] = assets.Asset(
                    self,
                    _asset_id(zip_path),
                    path=str(zip_path),
                    asset_hash=content_digest(zip_path),
                    asset_hash_type=cdk.AssetHashType.CUSTOM,
                )
            asset = made[zip_path]
            template["Resources"][logical_id]["Properties"][prop] = {
                "Bucket": asset.s3_bucket_name,
                "Key": asset.s3_object_key,
            }
        includable, self.verbatim = split_sam_references(template)
        included = self.build_dir / "included.json"
        included.write_text(json.dumps(includable, indent=2) + "\n")
        return str(included)


class PhotoSkyStack(cdk.Stack):
    """Every resource of one stage, as the single stack has them. Environment-agnostic: the account and region are
    the deploying credentials' (the template uses pseudo parameters), so synth needs no AWS access at all."""

    def __init__(self, scope: Construct, stage: str, build_dir: Path) -> None:
        super().__init__(scope, stack_name(stage))
        self.chalice = PackagedChalice(self, "PhotoSky", stage=stage, build_dir=build_dir)
