"""
Tuning
======

:class:`lamina.estimators.NetClassifier` and :class:`~lamina.estimators.NetRegressor` are scikit-learn
estimators around a lamina model. Their settings are flat values (``hidden``, ``learning_rate``,
``optimizer``, ...), so scikit-learn's searches try them like any other, in a ``Pipeline`` with the
preprocessing. The same search runs on a dask cluster through joblib's dask backend: here a
``LocalCluster`` in this process; against a scheduler's address it runs on many machines.
"""

# %%
# A grid search
# -------------
# A slice of MNIST, a scaler and the network in one pipeline, and a grid over the learning rate and the
# hidden layer's width, each scored by 3-fold cross-validation. Every fit is seeded
# (``random_state``) and uses one BLAS thread, so the scores are the same on every run.
import time

import matplotlib.pyplot as plt
import numpy as np
from joblib import parallel_config
from lamina.estimators import NetClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lamina import data

(x_train, y_train), (x_test, y_test) = data.mnist()
x, y, x_test, y_test = x_train[:1_500], y_train[:1_500], x_test[:1_000], y_test[:1_000]

pipe = make_pipeline(
    StandardScaler(), NetClassifier(optimizer="adam", epochs=4, batch_size=32, random_state=0)
)
grid = {
    "netclassifier__hidden": [(16,), (64,)],
    "netclassifier__learning_rate": [1e-3, 1e-2],
}
search = GridSearchCV(pipe, grid, cv=3)
began = time.perf_counter()
search.fit(x, y)
print(f"{len(search.cv_results_['params']) * 3} fits in one process: {time.perf_counter() - began:.1f} s")
print("best:", search.best_params_, f"cross-validated accuracy {search.best_score_:.3f}")
print(f"test accuracy of the best, refitted on all {len(x)}: {search.score(x_test, y_test):.3f}")

# %%
# Each combination's score, with its spread over the folds.
results = search.cv_results_
labels = [
    f"lr={p['netclassifier__learning_rate']:g}, {p['netclassifier__hidden'][0]} hidden"
    for p in results["params"]
]
order = np.argsort(results["mean_test_score"])
plt.figure(figsize=(7, 2.5))
plt.barh(np.array(labels)[order], results["mean_test_score"][order], xerr=results["std_test_score"][order])
plt.xlabel("cross-validated accuracy")
plt.xlim(0.5, 1)
plt.tight_layout()
plt.show()

# %%
# The same search on a dask cluster
# ---------------------------------
# ``LocalCluster(processes=False)`` starts a scheduler and workers as threads of this process (on a real
# cluster: ``Client("tcp://HOST:8786")``). Under ``parallel_config(backend="dask")`` joblib hands each fit
# to a worker. The scores equal the ones computed in one process.
from dask.distributed import Client, LocalCluster  # noqa: E402 (a tutorial imports where it shows)

with (LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
      Client(cluster) as client):
    print("workers:", len(client.scheduler_info()["workers"]))
    on_cluster = GridSearchCV(pipe, grid, cv=3, n_jobs=-1)
    began = time.perf_counter()
    with parallel_config(backend="dask"):
        on_cluster.fit(x, y)
    print(f"on the cluster: {time.perf_counter() - began:.1f} s")
print("same scores as in one process:",
      np.array_equal(on_cluster.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"]))
print("best:", on_cluster.best_params_)
