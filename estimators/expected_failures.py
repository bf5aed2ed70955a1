"""EXPECTED_FAILED_CHECKS: scikit-learn estimator checks the estimators are known to fail, with the reason."""

EXPECTED_FAILED_CHECKS: dict[str, str] = {}
"""check name -> why it fails (handed to ``parametrize_with_checks`` / ``check_estimator``); the goal is
none."""
