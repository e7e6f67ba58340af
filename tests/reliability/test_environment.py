"""conftest's `environment_restored`: what a test leaves in the process environment does not reach the next test.

chalice.test's clients swap `os.environ` for a patched copy around each invocation and put back the object they
found; two invocations racing in threads (as the worker races do) can put back the other's copy. The first test
does that, in that order; the second, run after it, must find the real environment as it was.
"""

from __future__ import annotations

import os

import pytest
from chalice.test import Client

LEAKED = "PHOTOSKY_TEST_LEAKED"
_left: list[str] = []  # what the first test left behind, for the second


def test_invocations_racing_in_threads_leave_the_environment_swapped_for_a_patched_copy(api: Client) -> None:
    real = os.environ
    first = api.lambda_._patched_env_vars({LEAKED: "first"})
    second = api.lambda_._patched_env_vars({})
    first.__enter__()
    second.__enter__()  # it finds the first one's copy in place
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)  # and puts that copy back
    assert os.environ is not real
    assert os.environ[LEAKED] == "first"
    _left.append(LEAKED)


def test_the_next_test_finds_the_real_environment_as_it_was() -> None:
    if not _left:
        pytest.skip("meaningful after the test above, which leaves the environment swapped")
    assert isinstance(os.environ, os._Environ)
    assert LEAKED not in os.environ
