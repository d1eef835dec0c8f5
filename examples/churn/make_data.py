"""Make the bundled example: a synthetic customer-churn table (seeded, so re-runnable).

Mixed numeric, categorical and datetime columns, some missing values, an id column and
a binary target that depends on the features with noise. Written by looml's authors;
no third-party data, so it is free to redistribute.

    python examples/churn/make_data.py   # rewrites examples/churn/churn.csv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

ROWS = 3000
SEED = 7


def make(rows: int = ROWS, seed: int = SEED) -> pl.DataFrame:
    """The churn table."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "standard", "premium"], rows, p=[0.5, 0.35, 0.15])
    region = rng.choice(["north", "south", "east", "west", "islands"], rows, p=[0.3, 0.3, 0.2, 0.18, 0.02])
    payment = rng.choice(["card", "bank transfer", "invoice"], rows, p=[0.6, 0.3, 0.1])
    tenure = rng.gamma(2.0, 12.0, rows).round().clip(1, 120)
    charges = {"basic": 20.0, "standard": 45.0, "premium": 80.0}
    monthly = np.array([charges[p] for p in plan]) + rng.normal(0, 6, rows)
    calls = rng.poisson(1.5, rows)
    signup = np.datetime64("2026-06-01") - (tenure * 30.4).astype("timedelta64[D]")
    logit = (-1.2 - 0.035 * tenure + 0.45 * calls + 0.02 * (monthly - 40)
             + np.where(payment == "invoice", 0.8, 0.0) + np.where(plan == "premium", -0.5, 0.0))
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pl.DataFrame({
        "customer_id": [f"C{100000 + i}" for i in range(rows)],
        "plan": plan, "region": region, "payment_method": payment,
        "tenure_months": tenure.astype(int), "monthly_charges": monthly.round(2),
        "support_calls": calls, "signup_date": signup.astype("datetime64[D]"),
        "churned": np.where(churned, "yes", "no"),
    })
    # Knock out some values, as real exports have them.
    for column, share in (("monthly_charges", 0.05), ("payment_method", 0.04), ("support_calls", 0.03)):
        gaps = rng.random(rows) < share
        frame = frame.with_columns(
            pl.when(pl.Series(gaps)).then(None).otherwise(pl.col(column)).alias(column))
    return frame


if __name__ == "__main__":
    out = Path(__file__).with_name("churn.csv")
    make().write_csv(out)
    print(f"wrote {out}")
