"""The live status WebSocket API in the single stack (issue 16), checked offline on the packaged template and on what
the SAM transform makes of it: its routes and functions, its stage's throttling and logging (a connect's query string
holds the user's ID token), exactly the execute-api:ManageConnections each function uses, and what the SPA is told.

The templates are built without the zips (resource types, names, settings and policies do not depend on them), so
this costs two `chalice package` runs and two SAM transforms; cfn-lint on the whole template is test_package's.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from infra import checks
from infra.package import (
    FUNCTION_NAMES,
    STAGES,
    THROTTLING,
    WEBSOCKET_ROUTES,
    WIRED_ENVIRONMENT,
    PackagingError,
    load_resources_template,
    merge_and_wire,
    pin_websocket_origin,
    render_policies,
    run_chalice_package,
    wire_websocket_api,
)
from infra.publish_web import spa_config
from tests.infra.test_resources_template import csp_allows, parse_csp, resolve

Stacks = dict[str, tuple[dict[str, Any], dict[str, Any]]]

WEBSOCKET_FUNCTIONS = tuple(WEBSOCKET_ROUTES.values())
TABLE_ARN = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/photosky-${Stage}"
# Placeholder values for resolving the templates' intrinsics offline.
NAMES = {
    "Stage": "dev",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "210987654321",
    "AWS::URLSuffix": "amazonaws.com",
    "WebsocketAPI": "abc123defg",
    "ApiOrigin": "",
}


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Stacks:
    """{stage: (the packaged template, its SAM-transformed form)}."""
    built = {}
    render_policies()
    for stage in STAGES:
        out_dir = tmp_path_factory.mktemp(stage)
        run_chalice_package(stage, out_dir)
        template = merge_and_wire(json.loads((out_dir / "sam.json").read_text()), load_resources_template(), stage)
        built[stage] = (template, checks.sam_transform(template, {"Stage": stage}))
    return built


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == resource_type}


def role_of(template: dict[str, Any], function: str) -> str:
    role: str = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def statements_of(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template["Resources"][role]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def websocket_stage_name(template: dict[str, Any]) -> str:
    (stage,) = of_type(template, "AWS::ApiGatewayV2::Stage").values()
    name: str = stage["StageName"]
    return name


# --- the API, its routes and functions ------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_connect_disconnect_and_messages_each_reach_their_own_function(stacks: Stacks, stage: str) -> None:
    transformed = stacks[stage][1]
    (api,) = of_type(transformed, "AWS::ApiGatewayV2::Api").values()
    assert api["ProtocolType"] == "WEBSOCKET"
    integrations = of_type(transformed, "AWS::ApiGatewayV2::Integration")
    routes = {r["RouteKey"]: r for r in of_type(transformed, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    for route_key, route in routes.items():
        # No API Gateway authorizer: the connect function checks the token itself, as strictly as the REST
        # authorizer (chalicelib/realtime/tokens.py), and refuses the handshake with a 401.
        assert route.get("AuthorizationType", "NONE") == "NONE", route_key
        _, (_, integration_ref) = route["Target"]["Fn::Join"]
        integration = integrations[integration_ref["Ref"]]
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["IntegrationUri"]["Fn::Sub"][1] == {"WebsocketHandler": {"Ref": WEBSOCKET_ROUTES[route_key]}}
    permissions = of_type(transformed, "AWS::Lambda::Permission")
    for function in WEBSOCKET_FUNCTIONS:
        # API Gateway may invoke each function from this API only.
        (source,) = [p["SourceArn"] for p in permissions.values() if p["FunctionName"] == {"Ref": function}]
        assert source["Fn::Sub"] == [
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebsocketAPIId}/*",
            {"WebsocketAPIId": {"Ref": "WebsocketAPI"}},
        ]


@pytest.mark.parametrize("stage", STAGES)
def test_the_websocket_functions_are_wired_like_the_others(stacks: Stacks, stage: str) -> None:
    resources = stacks[stage][0]["Resources"]
    roles = {role_of(stacks[stage][0], name) for name in FUNCTION_NAMES}
    assert len(roles) == len(FUNCTION_NAMES)  # each function its own role
    sized = {}
    for function in WEBSOCKET_FUNCTIONS:
        properties = resources[function]["Properties"]
        assert properties["FunctionName"] == {"Fn::Sub": f"photosky-${{Stage}}-{FUNCTION_NAMES[function]}"}
        assert properties["Architectures"] == ["arm64"]
        assert properties["Runtime"] == "python3.12"
        assert properties["CodeUri"] == "./deployment.zip"  # the API's package: bytecode, no native code
        assert "Layers" not in properties  # no image code
        assert "SnapStart" not in properties
        assert "AutoPublishAlias" not in properties
        variables = properties["Environment"]["Variables"]
        assert {name: variables[name] for name in WIRED_ENVIRONMENT} == WIRED_ENVIRONMENT  # app.py's settings
        sized[function] = (properties["MemorySize"], properties["Timeout"])
    # The connect function verifies an RS256 signature in pure Python and writes a transaction, on the user's path
    # (a cold start imports botocore): the API's 512 MB. The other two are a few DynamoDB calls. All far below API
    # Gateway's 29 s integration timeout, and the connect handler's key fetch has its own short timeout.
    assert sized == {"WebsocketConnect": (512, 10), "WebsocketDisconnect": (256, 10), "WebsocketMessage": (256, 10)}
    assert {f"photosky-{stage}-ws-connect", f"photosky-{stage}-ws-disconnect", f"photosky-{stage}-ws-message"} == {
        f"photosky-{stage}-{FUNCTION_NAMES[function]}" for function in WEBSOCKET_FUNCTIONS
    }


@pytest.mark.parametrize("stage", STAGES)
def test_realtime_settings_reach_exactly_the_functions_that_use_them(stacks: Stacks, stage: str) -> None:
    template = stacks[stage][0]
    management_url = {
        "Fn::Sub": f"https://${{WebsocketAPI}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/"
        f"{websocket_stage_name(template)}"
    }
    found = {}
    for function in FUNCTION_NAMES:
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        found[function] = {name: variables[name] for name in variables if name.startswith("PHOTOSKY_WS_")}
        # Every function reads the pool (the app's authorizer at import; the connect function's token issuer).
        assert variables["COGNITO_USER_POOL_ARN"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
        # Only the connect function checks tokens, whose audience is the SPA's client.
        client_id = variables.get("PHOTOSKY_USER_POOL_CLIENT_ID")
        assert client_id == ({"Ref": "SpaClient"} if function == "WebsocketConnect" else None), function
    pushing = {"APIHandler", "ProcessUploads", "ReleaseAbandonedUploads", "WebsocketConnect", "WebsocketMessage"}
    assert found == {
        function: ({"PHOTOSKY_WS_MANAGEMENT_URL": management_url} if function in pushing else {})
        for function in FUNCTION_NAMES
    }
    # chalicelib.config accepts it: an https base URL without a query.
    resolved = resolve(management_url, NAMES, {})
    assert resolved == "https://abc123defg.execute-api.eu-west-1.amazonaws.com/api"


# --- the stage: throttling, and the token never logged --------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_the_websocket_stage_is_throttled_like_the_rest_stage(stacks: Stacks, stage: str) -> None:
    transformed = stacks[stage][1]
    (websocket,) = of_type(transformed, "AWS::ApiGatewayV2::Stage").values()
    (rest,) = of_type(transformed, "AWS::ApiGateway::Stage").values()
    default = websocket["DefaultRouteSettings"]
    assert (default["ThrottlingRateLimit"], default["ThrottlingBurstLimit"]) == THROTTLING[stage]
    assert (rest["MethodSettings"][0]["ThrottlingRateLimit"], rest["MethodSettings"][0]["ThrottlingBurstLimit"]) == (
        THROTTLING[stage]
    )
    assert "RouteSettings" not in websocket  # every route on the default: none is left unthrottled


@pytest.mark.parametrize("stage", STAGES)
def test_the_websocket_stage_never_logs_a_connects_query_string(stacks: Stacks, stage: str) -> None:
    # `<ws_url>?token=<ID token>`: API Gateway's execution logs (and data traces) would record the request, its
    # query string included, and an access log format could name it. All off, explicitly.
    for template in stacks[stage]:
        assert checks.websocket_stage_logging(template) == []
        (websocket,) = of_type(template, "AWS::ApiGatewayV2::Stage").values()
        assert "AccessLogSettings" not in websocket
        assert websocket["DefaultRouteSettings"]["LoggingLevel"] == "OFF"
        assert websocket["DefaultRouteSettings"]["DataTraceEnabled"] is False


ACCESS = "WebsocketAPIStage: access logging is on"
EXECUTION = "WebsocketAPIStage: execution logging is not OFF for every route"
TRACE = "WebsocketAPIStage: data tracing is not off for every route"


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        ({"AccessLogSettings": {"DestinationArn": "arn:aws:logs:x", "Format": "$context.requestId"}}, [ACCESS]),
        ({"DefaultRouteSettings": {"LoggingLevel": "INFO", "DataTraceEnabled": False}}, [EXECUTION]),
        ({"DefaultRouteSettings": {"LoggingLevel": "ERROR", "DataTraceEnabled": False}}, [EXECUTION]),
        ({"DefaultRouteSettings": {"LoggingLevel": "OFF", "DataTraceEnabled": True}}, [TRACE]),
        ({"DefaultRouteSettings": {}}, [EXECUTION, TRACE]),  # API Gateway's defaults are not ours to rely on
        ({"RouteSettings": {"$connect": {"LoggingLevel": "INFO"}}}, ["WebsocketAPIStage: route $connect logs"]),
        ({"RouteSettings": {"$connect": {"DataTraceEnabled": True}}}, ["WebsocketAPIStage: route $connect logs"]),
    ],
)
def test_a_websocket_stage_that_could_log_the_token_is_caught(
    stacks: Stacks, change: dict[str, Any], problems: list[str]
) -> None:
    broken = copy.deepcopy(stacks["dev"][0])
    broken["Resources"]["WebsocketAPIStage"]["Properties"].update(change)
    assert checks.websocket_stage_logging(broken) == problems


# --- execute-api:ManageConnections, exactly --------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_manage_connections_is_granted_exactly_where_it_is_used(stacks: Stacks, stage: str) -> None:
    for template in stacks[stage]:
        assert checks.loose_connections_grants(template) == []
        # POST (push, pong) where chalicelib.realtime posts; DELETE (closing a socket): the connect function (the
        # oldest connection beyond the bound), the message function (a ping from a connection no longer stored), and
        # account deletion, which the API and the scheduled job run; GET nowhere. The disconnect function only
        # forgets the connection.
        assert checks.connections_methods(template) == {
            role_of(template, "APIHandler"): {"POST", "DELETE"},
            role_of(template, "ProcessUploads"): {"POST"},
            role_of(template, "ReleaseAbandonedUploads"): {"POST", "DELETE"},
            role_of(template, "WebsocketMessage"): {"POST", "DELETE"},
            role_of(template, "WebsocketConnect"): {"DELETE"},
        }
    # What IAM sees: this stack's API, the stage the functions post to, one method, any connection.
    template = stacks[stage][0]
    (grant,) = [
        s["Resource"]
        for s in statements_of(template, role_of(template, "WebsocketConnect"))
        if "execute-api:ManageConnections" in s["Action"]
    ]
    assert (
        resolve(grant, NAMES, {}) == "arn:aws:execute-api:eu-west-1:210987654321:abc123defg/api/DELETE/@connections/*"
    )


LOOSE = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Resource": {"Fn::Sub": LOOSE + "*/api/POST/@connections/*"}}, "on arn:"),  # any API of the account
        ({"Resource": {"Fn::Sub": LOOSE + "${WebsocketAPI}/*"}}, "on arn:"),  # every stage, method and route
        ({"Resource": {"Fn::Sub": LOOSE + "${WebsocketAPI}/dev/POST/@connections/*"}}, "on arn:"),  # another stage
        ({"Resource": {"Fn::Sub": LOOSE + "${WebsocketAPI}/api/PATCH/@connections/*"}}, "on arn:"),
        ({"Resource": "*"}, "on *"),
        ({"Action": ["execute-api:*"]}, "not execute-api:ManageConnections alone"),
        ({"Action": ["execute-api:ManageConnections", "execute-api:Invoke"]}, "alone"),
        ({"Condition": {"Bool": {"aws:SecureTransport": "true"}}}, "not a plain Allow"),
    ],
)
def test_a_loose_manage_connections_grant_is_caught(stacks: Stacks, statement: dict[str, Any], problem: str) -> None:
    broken = copy.deepcopy(stacks["dev"][0])
    role = role_of(broken, "WebsocketMessage")
    (grant,) = [s for s in statements_of(broken, role) if "execute-api:ManageConnections" in s["Action"]]
    grant.update(statement)
    problems = checks.loose_connections_grants(broken)
    (found,) = problems
    assert found.startswith(f"{role}: AnswerPings: ")
    assert problem in found


# --- each WebSocket function's other rights --------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_each_websocket_function_touches_only_the_connection_items_it_needs(stacks: Stacks, stage: str) -> None:
    template = stacks[stage][0]
    found = {}
    for function in WEBSOCKET_FUNCTIONS:
        statements = statements_of(template, role_of(template, function))
        assert {a.split(":")[0] for s in statements for a in s["Action"]} <= {"logs", "dynamodb", "execute-api"}
        table = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]
        assert all(s["Resource"] == {"Fn::Sub": TABLE_ARN} for s in table), function  # no index, no other table
        found[function] = {a for s in table for a in s["Action"]}
    # DynamoDB authorizes a transaction's writes per item: the connect's two Puts as PutItem, and forgetting a
    # connection (two Deletes) as DeleteItem. Connect finds the user's connections with a Query (the bound);
    # disconnect and a pong to a gone connection find the owner with a GetItem.
    assert found == {
        "WebsocketConnect": {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "WebsocketDisconnect": {"dynamodb:GetItem", "dynamodb:DeleteItem"},
        "WebsocketMessage": {"dynamodb:GetItem", "dynamodb:DeleteItem"},
    }


# --- what the SPA is told -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_the_spa_gets_the_websocket_url_from_the_outputs(stacks: Stacks, stage: str) -> None:
    template = stacks[stage][0]
    output = template["Outputs"]["WebsocketUrl"]["Value"]
    name = websocket_stage_name(template)
    assert output == {"Fn::Sub": f"wss://${{WebsocketAPI}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{name}"}
    outputs = {
        "UserPoolId": "eu-west-1_Ab12",
        "UserPoolClientId": "client",
        "Region": "eu-west-1",
        "SpaBucketName": f"photosky-{stage}-spa-210987654321-eu-west-1",
        "SpaDistributionId": "E2QWRUHAPOMQZL",
        "EndpointURL": "https://xyz.execute-api.eu-west-1.amazonaws.com/api/",
        "WebsocketUrl": resolve(output, NAMES, {}),
    }
    assert spa_config(outputs)["ws_url"] == "wss://abc123defg.execute-api.eu-west-1.amazonaws.com/api"


def deployed_csp(template: dict[str, Any]) -> dict[str, set[str]]:
    headers = template["Resources"]["SpaResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    policy = headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    return parse_csp(resolve(policy, NAMES, {"HasApiOrigin": False}))


def test_the_spas_csp_lets_it_connect_to_this_stacks_websocket_api_only(stacks: Stacks) -> None:
    connect = deployed_csp(stacks["dev"][0])["connect-src"]
    ws_url = resolve(stacks["dev"][0]["Outputs"]["WebsocketUrl"]["Value"], NAMES, {})
    assert csp_allows(connect, ws_url + "?token=eyJ")
    assert not csp_allows(connect, "wss://other12345.execute-api.eu-west-1.amazonaws.com/api")
    assert not [source for source in connect if source.startswith("wss://*")]  # pinned, unlike resources.yaml's
    # resources.yaml alone (the `chalice deploy` path) allows the region's WebSocket APIs.
    standalone = deployed_csp(load_resources_template())["connect-src"]
    assert csp_allows(standalone, "wss://other12345.execute-api.eu-west-1.amazonaws.com/api?token=eyJ")


# --- packaging refuses what would break the above -------------------------------------------------------------------


def test_packaging_refuses_a_template_without_the_websocket_api(stacks: Stacks) -> None:
    broken = copy.deepcopy(stacks["dev"][0])
    for name in [n for n, r in broken["Resources"].items() if r["Type"].startswith("AWS::ApiGatewayV2::")]:
        del broken["Resources"][name]
    with pytest.raises(PackagingError, match="no WebSocket API"):
        wire_websocket_api(broken, "dev")


def test_packaging_refuses_a_route_that_does_not_reach_its_function(stacks: Stacks) -> None:
    wire_websocket_api(copy.deepcopy(stacks["dev"][0]), "dev")  # the real template passes
    broken = copy.deepcopy(stacks["dev"][0])
    target = broken["Resources"]["WebsocketMessageRoute"]["Properties"]["Target"]["Fn::Join"][1]
    target[1] = {"Ref": "WebsocketConnectAPIIntegration"}
    with pytest.raises(PackagingError, match=re.escape("route $default does not reach the function WebsocketMessage")):
        wire_websocket_api(broken, "dev")


def test_packaging_refuses_a_csp_without_the_websocket_origin(stacks: Stacks) -> None:
    resources = copy.deepcopy(stacks["dev"][0]["Resources"])
    headers = resources["SpaResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    del headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"][1]["Websocket"]
    with pytest.raises(PackagingError, match="no Websocket origin"):
        pin_websocket_origin(resources)
