"""support.sample and support.full_matrix: what `make test` tries of a fault matrix, and when it tries it all."""

from __future__ import annotations

import pytest

from tests.reliability.support import full_matrix, sample

# A read, a write, a transaction, a read, a write, a transaction, an S3 call: the faults that fit each.
MATRIX = [
    (0, ["throttled"]),
    (1, ["throttled", "reply lost"]),
    (2, ["throttled", "reply lost", "cancelled"]),
    (3, ["throttled"]),
    (4, ["throttled", "reply lost"]),
    (5, ["throttled", "reply lost", "cancelled"]),
    (6, ["throttled (S3)"]),
]


def test_the_full_matrix_is_every_cell_in_order() -> None:
    assert sample(MATRIX, full=True) == [(row, cell) for row, cells in MATRIX for cell in cells]


def test_the_sample_tries_each_row_once_rotating_through_the_kinds_that_fit() -> None:
    assert sample(MATRIX, full=False) == [
        (0, "throttled"),
        (1, "reply lost"),
        (2, "cancelled"),
        (3, "throttled"),
        (4, "reply lost"),
        (5, "cancelled"),
        (6, "throttled (S3)"),
    ]


def test_a_kind_no_row_got_is_tried_at_the_first_row_it_fits_too() -> None:
    # The first row takes "a" and the second "b" (tried least); "c" fits only there, so the second row tries both.
    assert sample([(0, ["a", "b"]), (1, ["a", "b", "c"])], full=False) == [(0, "a"), (1, "b"), (1, "c")]


def test_with_a_stride_only_every_nth_row_and_the_last_get_a_cell_yet_every_kind_is_tried() -> None:
    assert sample(MATRIX, every=3, full=False) == [
        (0, "throttled"),
        (1, "reply lost"),  # no row of the stride got these kinds: each at the first row it fits
        (2, "cancelled"),
        (3, "throttled"),
        (6, "throttled (S3)"),
    ]


def test_kinds_are_told_apart_by_the_kind_function() -> None:
    # Two throttling errors are one kind: the sample need not try both.
    matrix = [(0, [("throttled", "A")]), (1, [("throttled", "B"), ("reply lost", "")])]
    assert sample(matrix, lambda cell: cell[0], full=False) == [(0, ("throttled", "A")), (1, ("reply lost", ""))]


@pytest.mark.parametrize(
    ("env", "full"),
    [
        ({}, False),
        ({"PHOTOSKY_FUZZ_EXAMPLES": "200"}, True),
        ({"PHOTOSKY_FAULTS": "all"}, True),
        ({"PHOTOSKY_FAULTS": "ALL "}, True),
        ({"PHOTOSKY_FUZZ_EXAMPLES": "200", "PHOTOSKY_FAULTS": "sample"}, False),
    ],
)
def test_the_full_matrix_runs_at_the_fuzz_budget_or_when_asked(env: dict[str, str], full: bool) -> None:
    assert full_matrix(env) is full


def test_an_unknown_choice_is_an_error_not_a_silent_sample() -> None:
    with pytest.raises(ValueError, match="PHOTOSKY_FAULTS"):
        full_matrix({"PHOTOSKY_FAULTS": "full"})
