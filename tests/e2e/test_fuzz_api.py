"""Schemathesis against the running dev stack, with a real Cognito token: every operation in openapi.yaml.

Each operation is fuzzed with schema-valid and schema-invalid requests; every response must be no 5xx, a
documented status, the documented body and headers. A stateful run follows the spec's links (upload, then get,
edit and delete that photo). The budget is small in `make test` and large in `make fuzz`
(`PHOTOSKY_FUZZ_EXAMPLES`). Each example is a case in the "fuzz" reliability suite.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import CHECKS
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from devstack.token import new_confirmed_user
from tests.conftest import PROJECT_DIR
from tests.e2e.test_devstack import api, cognito, sign_in  # noqa: F401  (fixtures used below)
from tests.support.reliability import Cases

pytestmark = [pytest.mark.e2e, pytest.mark.suite("fuzz")]

EXAMPLES = int(os.environ.get("PHOTOSKY_FUZZ_EXAMPLES", "25"))
STATEFUL_STEPS = max(10, EXAMPLES // 2)
SCHEMA = schemathesis.openapi.from_path(PROJECT_DIR / "openapi.yaml")
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure in CI reproduces locally
    database=None,
    phases=[Phase.explicit, Phase.generate],  # shrinking a failure against a live server costs more than it tells
    suppress_health_check=list(HealthCheck),
)


def excluded_checks(case: Any) -> list[Any]:
    excluded = []
    # The spec cannot express which cursors and path ids exist, so a schema-valid cursor or id may rightly be
    # refused (400 for a cursor the API never signed): "valid data must be accepted" does not hold for those.
    if case.query and case.query.get("cursor") is not None:
        excluded.append(positive_data_acceptance)
    # The API accepts tags in any script, a superset of the portable pattern the spec documents; so a request the
    # spec calls invalid may rightly succeed. Every other check (no 5xx, documented status and body) still runs.
    excluded.append(negative_data_rejection)
    return excluded


# Headers that frame the message itself, the HTTP client's business: schemathesis's coverage phase may send any
# header name, and a nonsense Transfer-Encoding is refused by the server (as CloudFront or API Gateway would) before
# any route sees it, with a status no operation documents. Framing attacks have their own suite (edges).
FRAMING_HEADERS = frozenset({"transfer-encoding", "content-length", "connection", "host", "te", "trailer", "upgrade"})


def unframed(case: Any) -> Any:
    if case.headers:
        case.headers = {name: value for name, value in case.headers.items() if name.lower() not in FRAMING_HEADERS}
    return case


@pytest.fixture(scope="module")
def fuzzer(devstack: dict[str, Any], cognito: Any, api: Callable[..., Any]) -> dict[str, str]:  # noqa: F811
    """A fresh user with a profile, so the profile routes have something to answer."""
    user = sign_in(cognito, devstack["user_pool_client_id"], *new_confirmed_user(devstack, "fuzz"))
    reply = api("POST", "/users", token=user.id_token, body={"display_name": "Fuzzer"})
    assert reply.status == 201, reply
    return {"Authorization": user.id_token}


@pytest.fixture(scope="module")
def session() -> requests.Session:
    return requests.Session()


@SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_every_operation_survives_fuzzing(
    case: Any, devstack: dict[str, Any], fuzzer: dict[str, str], session: requests.Session, cases: Cases
) -> None:
    cases.tried()
    unframed(case).call_and_validate(
        base_url=devstack["api_url"], headers=fuzzer, session=session, excluded_checks=excluded_checks(case)
    )


def test_stateful_workflows_follow_the_links(
    devstack: dict[str, Any], fuzzer: dict[str, str], session: requests.Session, cases: Cases
) -> None:
    base_machine = SCHEMA.as_state_machine()

    class Workflow(base_machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            unframed(case)
            return {"base_url": devstack["api_url"], "headers": fuzzer, "session": session}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            cases.tried()
            case.validate_response(response, excluded_checks=excluded_checks(case), headers=fuzzer)

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=max(3, EXAMPLES // 5),
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_the_checks_we_rely_on_exist() -> None:
    # Guards the exclusions above against a schemathesis upgrade renaming them (an unknown name would exclude
    # nothing and the suite would fail for the wrong reason, or worse, a rename would silently skip a check).
    names = set(CHECKS.get_all_names())
    assert {"not_a_server_error", "status_code_conformance", "response_schema_conformance"} <= names
    assert {"positive_data_acceptance", "negative_data_rejection"} <= names
