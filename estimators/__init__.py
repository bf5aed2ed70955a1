"""lamina.estimators: scikit-learn estimators around lamina models (needs the extra: pip install
'lamina[sklearn]').

NetClassifier and NetRegressor take flat settings (searchable by GridSearchCV / RandomizedSearchCV,
also over a dask cluster through joblib's dask backend) and train through ``optim.train_step``.
"""

from lamina.estimators.classifier import NetClassifier
from lamina.estimators.expected_failures import EXPECTED_FAILED_CHECKS
from lamina.estimators.regressor import NetRegressor
from lamina.estimators.settings import ACTIVATIONS, OPTIMIZERS, REGRESSION_LOSSES

__all__ = ["NetClassifier", "NetRegressor", "EXPECTED_FAILED_CHECKS", "OPTIMIZERS", "ACTIVATIONS",
           "REGRESSION_LOSSES"]
