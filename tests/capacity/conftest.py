"""The capacity model's fixtures: the scenario traced once per session (about 5 s), the model built from it."""

from __future__ import annotations

import pytest

from ops.capacity.model import AccessModel, build_model
from ops.capacity.trace import Traces, build_traces


@pytest.fixture(scope="session")
def traces() -> Traces:
    return build_traces()


@pytest.fixture(scope="session")
def access_model(traces: Traces) -> AccessModel:
    return build_model(traces)
