"""Another pytest run of this project at the same time must not fail this one, while every
other warning stays an error."""

from __future__ import annotations

import warnings

import pytest


def test_a_concurrent_runs_temporary_directory_cleanup_is_not_an_error() -> None:
    # What pytest warns when another run removes a temporary directory under it at start-up;
    # under `filterwarnings = error` alone this line would raise.
    warnings.warn(
        pytest.PytestWarning("(rm_rf) error removing /tmp/pytest-of-ci/garbage-1f2e"),
        stacklevel=1,
    )


def test_every_other_warning_is_still_an_error() -> None:
    with pytest.raises(pytest.PytestWarning, match="something else"):
        warnings.warn(pytest.PytestWarning("something else went wrong"), stacklevel=1)
    with pytest.raises(DeprecationWarning):
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
