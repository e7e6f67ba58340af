"""PhotoSky as an AWS CDK app (Python): `cdk synth|deploy|destroy -c stage=dev|prod` in infra/cdk (README, Deploy).

One source of truth: the CDK app defines no resource of its own. Each stage's stack is Chalice's construct
(`chalice.cdk.Chalice`), which includes (`CfnInclude`) the template `infra.package` builds: `chalice package`'s
functions and API merged with `infra/resources.yaml` and wired exactly as for the single stack (policies with
exact ARNs, stage throttling, gateway responses with CORS, SnapStart alias, WebSocket settings, arm64). The YAML
stays, because three deploy paths read it (the single stack, `chalice deploy` after a resources-only stack, and this
app), and writing the resources in CDK code instead would make a second copy that drifts from the other two.

What the construct cannot carry by itself, and how it is closed (infra/cdk/stack.py):
- It runs its own `chalice package`, with no bytecode, no zip checks, no packaging stand-in for the pool ARN and
  none of the wiring: `PackagedChalice` packages with `infra.package.package()` instead (its two packaging hooks,
  chalice 1.34.0), and points the construct's code asset at the zip that function built (bytecode included).
- The image layer, which Chalice does not know, becomes a second asset for the layer resource of the same template.
- Both assets are named by their content, not their zip's bytes (new timestamps on every build): a deploy that
  changes no code uploads nothing and updates no function.
- `CfnInclude` refuses a `Ref` to a SAM-generated resource (`APIHandler.Alias`, the SnapStart alias): properties
  holding one are included as a placeholder and set back verbatim as overrides.
Logical ids are kept (`preserve_logical_ids`), so a stage's stack is the single stack's resource for resource, and
`tests/infra/test_cdk.py` checks exactly that.
"""
