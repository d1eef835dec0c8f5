"""Every custom transformer and wrapper keeps the scikit-learn estimator contract."""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from looml.learn.rows import TargetTransform, TrainingRows
from looml.learn.selection import CorrelationFilter, MutualInfoSelector
from looml.learn.transformers import CyclicParts, DerivedColumns, OutlierClipper, TextTfidf

ESTIMATORS = [
    OutlierClipper(), OutlierClipper(method="zscore", threshold=2.0),
    DerivedColumns(expressions=(("ratio", "x0 / (abs(x0) + 1)"), ("flag", "where(x0 > 0, 1, 0)"))),
    TextTfidf(min_df=1), CyclicParts(parts=("month", "hour")),
    CorrelationFilter(threshold=0.9), MutualInfoSelector(k=2, task="classification", random_state=0),
    TrainingRows(LogisticRegression(), drop_duplicates=True, resample="oversample", random_state=0),
    TrainingRows(Ridge(), outlier_rows="isolation_forest", random_state=0),
    TargetTransform(method="yeo-johnson"),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_contract(estimator, check) -> None:
    check(estimator)
