"""scikit-learn's own estimator checks, in full, on both estimators (expected failures:
lamina.estimators.EXPECTED_FAILED_CHECKS)."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from lamina.estimators import EXPECTED_FAILED_CHECKS, NetClassifier, NetRegressor  # noqa: E402


def test_no_check_is_expected_to_fail():
    assert EXPECTED_FAILED_CHECKS == {}


@parametrize_with_checks([NetClassifier(), NetRegressor(), NetClassifier(hidden=(8, 8), optimizer="sgd",
                                                                         epochs=10,
                                                                         learning_rate=0.1)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_checks(estimator, check):
    check(estimator)
