"""The CDK app: `cdk synth|deploy|destroy -c stage=dev|prod` runs this file (cdk.json's "app") from infra/cdk.

`-c stage=dev,prod` builds both stages in one run (`make test` does, to pay the CDK's start-up once). Each stage's
package is built under the cloud assembly's folder (`package-<stage>`), so the assets the stack names stay there.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI runs this file as a script, so Python puts infra/cdk first on the path; the app imports the project's own
# packages (infra.package), which live at the project's root.
PROJECT_DIR = Path(__file__).resolve().parents[2]
if __name__ == "__main__":
    sys.path[0] = str(PROJECT_DIR)

from infra.package import STAGES, PackagingError


class UsageError(Exception):
    pass


def stages_from_context(value: object) -> tuple[str, ...]:
    """The stages `-c stage=...` names: one, or several separated by commas; each once, in order."""
    usage = f"say which stage to build: cdk synth -c stage=dev (one of {', '.join(STAGES)}, or several: dev,prod)"
    if not isinstance(value, str) or not value.strip():
        raise UsageError(usage)
    stages = tuple(dict.fromkeys(stage.strip() for stage in value.split(",")))
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise UsageError(f"unknown stage {', '.join(map(repr, unknown))}: {usage}")
    return stages


def main() -> int:
    import aws_cdk as cdk

    from infra.cdk.stack import PhotoSkyStack

    app = cdk.App()
    try:
        for stage in stages_from_context(app.node.try_get_context("stage")):
            # Absolute: the CLI passes its --output as given (relative to infra/cdk), and chalice runs elsewhere.
            PhotoSkyStack(app, stage, Path(app.outdir).resolve() / f"package-{stage}")
    except (UsageError, PackagingError) as e:
        print(f"infra/cdk/app.py: error: {e}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
