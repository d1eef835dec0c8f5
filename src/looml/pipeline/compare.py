"""The new model against the champion, on this run's holdout, and what `registry.promote` does.

    lineage_document(data_digest, split_digest, evaluated_pipeline) -> text logged with a version
    compare_with_champion(...) -> the `compare` stage's output: a paired bootstrap, or why not
    promotion(policy, compared) -> (move the alias?, why)
    promote_if_better(spec, tracking_uri, home, version, compared) -> (moved?, why): the move, audited

A fair comparison scores both models on rows neither trained on. Two ways are tried, in order:

- **the same holdout**: the champion's run split the same snapshot the same way (its lineage
  names this run's split) and the pipeline it evaluated is in this project's store. Both
  configurations, fitted on the same training rows, score the same holdout rows.
- **the holdout rows new to the champion**: the registered champion (refitted on every row of
  its own snapshot, by default) scores the holdout rows that are not in its snapshot (read from
  this project's store), if there are at least `loop.promotion.min_rows` of them.

Otherwise there is no comparison, and the reason says why (no lineage, its snapshot is not here,
too few new rows, columns or classes it does not have, a custom primary metric). The test is
the loop's: the one-sided `loop.promotion.confidence` lower bound of the improvement in the
primary metric must be above `loop.promotion.margin` (`monitor.stats.paired_bootstrap`); each
row counts once (`data.sample_weight` does not weigh the comparison).
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from looml.data.validate import ValidationReport
from looml.monitor.stats import COMPARABLE, outcomes_of, paired_bootstrap
from looml.spec import Spec
from looml.store.artifacts import ArtifactStore

__all__ = ["COMPARISON_ARTIFACT", "LINEAGE_ARTIFACT", "compare_with_champion", "is_this_work",
           "lineage_document", "promote_if_better", "promotion"]

LINEAGE_ARTIFACT = "looml/lineage.json"
COMPARISON_ARTIFACT = "looml/comparison.json"  # the comparison a version was registered with
_SHA256 = re.compile(r"[0-9a-f]{64}")


def lineage_document(data_digest: str, split_digest: str, evaluated_pipeline: str) -> str:
    """What a later run needs to compare with this version: its snapshot, its split and the
    pipeline it evaluated on the holdout (digests in the project's store)."""
    return json.dumps({"snapshot": data_digest, "split": split_digest,
                       "evaluated_pipeline": evaluated_pipeline}, indent=2)


def is_this_work(lineage_text: str | None, data_digest: str, split_digest: str,
                 evaluated_pipeline: str) -> bool:
    """Whether a version's lineage is this very work (the same snapshot, split and evaluated pipeline)."""
    found = _digests(lineage_text) if lineage_text is not None else None
    return found == {"snapshot": data_digest, "split": split_digest, "evaluated_pipeline": evaluated_pipeline}


def compare_with_champion(champion: str, lineage_text: str | None, fitted: Any, frame: pl.DataFrame,
                          indices: np.ndarray, report: ValidationReport, spec: Spec, store: ArtifactStore,
                          tracking_uri: str, split_digest: str, primary: str) -> dict[str, Any]:
    """This run's evaluated pipeline against champion version `champion` on holdout rows that
    neither trained on: `{"status": "compared", "basis": ..., <the Comparison>}`, or
    `{"status": "not compared", "reason": ...}`."""
    from looml.store.versions import load_pipeline

    def skipped(reason: str) -> dict[str, Any]:
        return {"status": "not compared", "champion": champion, "metric": primary, "reason": reason}

    if primary not in COMPARABLE[report.task]:
        return skipped(f"the primary metric {primary!r} is not one of looml's own, which the comparison uses")
    if lineage_text is None:
        return skipped(f"v{champion} carries no {LINEAGE_ARTIFACT} (registered by an older looml), so the "
                       "rows it trained on are unknown")
    # The lineage is read from the registry, which others may write (a team's store): only
    # well-formed digests are looked up, and only in this project's own store, where every
    # artifact was written by looml under the digest of its bytes (`get_bytes` checks it).
    lineage = _digests(lineage_text)
    if lineage is None:
        return skipped(f"v{champion}'s {LINEAGE_ARTIFACT} is not what looml writes")
    n_train = int(indices[0])
    holdout = frame[indices[n_train + 1:]]
    if lineage["split"] == split_digest and store.has(lineage["evaluated_pipeline"]):
        old = pickle.loads(store.get_bytes(lineage["evaluated_pipeline"]))  # our own, digest-checked
        basis = "the same holdout, both fitted on the same training rows"
    else:
        snapshot = lineage["snapshot"]
        if not store.has(snapshot):
            return skipped(f"v{champion} trained on snapshot {snapshot[:12]}, which is not in this project's "
                           "store, so which holdout rows it saw is unknown")
        new_rows = _not_in(holdout, pl.read_parquet(store.path(snapshot)), [*report.features, report.target])
        needed = spec.loop.promotion.min_rows
        if int(new_rows.sum()) < needed:
            return skipped(f"only {int(new_rows.sum())} of the {holdout.height} holdout rows are new to "
                           f"v{champion} (it trained on the others); loop.promotion.min_rows is {needed}")
        holdout = holdout.filter(pl.Series(new_rows))
        old = load_pipeline(tracking_uri, spec.registry.model_name, champion)[0]
        basis = f"the {holdout.height} holdout rows new to v{champion}"
    wanted = list(getattr(old, "feature_names_in_", report.features))
    missing = [c for c in wanted if c not in holdout.columns]
    if missing:
        return skipped(f"v{champion} needs columns this data does not have: {', '.join(missing[:5])}")
    X, y = holdout.select(list(report.features)).to_pandas(), holdout.get_column(report.target).to_numpy()
    try:
        before = outcomes_of(old, holdout.select(wanted).to_pandas(), y, spec.data.positive_class)
    except Exception as exc:  # a champion from other libraries or other data: reported, not raised
        return skipped(f"v{champion} could not score this holdout: {type(exc).__name__}: {exc}")
    after = outcomes_of(fitted, X, y, spec.data.positive_class)
    if before.task != after.task or list(before.classes) != list(after.classes):
        return skipped(f"v{champion} predicts {_what(before)}, this model {_what(after)}")
    settings = spec.loop.promotion
    found = paired_bootstrap(primary, before, after, margin=settings.margin, confidence=settings.confidence,
                             resamples=settings.resamples, seed=spec.seed)
    values = found.to_dict()
    values["champion_value"], values["challenger_value"] = values.pop("champion"), values.pop("challenger")
    return {"status": "compared", "champion": champion, "basis": basis, **values}


def promotion(policy: str, compared: dict[str, Any]) -> tuple[bool, str]:
    """Whether `registry.promote` moves the champion alias to the new version, and why (or why not)."""
    if not compared:
        return False, ""
    champion = compared["champion"]
    if policy != "if_better":
        return False, f"v{champion} stays champion: registry.promote is {policy!r}"
    if compared["status"] != "compared":
        return False, f"v{champion} stays champion: not compared ({compared['reason']})"
    verdict = (f"{compared['metric']} {compared['challenger_value']:.4g} against "
               f"{compared['champion_value']:.4g}: improvement {compared['improvement']:+.4g}, "
               f"{compared['confidence']:.0%} lower bound {compared['lower_bound']:+.4g}, "
               f"margin {compared['margin']:g}")
    if compared["significant"]:
        return True, f"better than v{champion} on {compared['basis']}: {verdict}"
    return False, f"v{champion} stays champion: this model is not shown better ({verdict})"


def promote_if_better(spec: Spec, tracking_uri: str, home: Path, version: str,
                      compared: dict[str, Any]) -> tuple[bool, str]:
    """Make the new `version` champion if `promotion` says so, recorded in the audit trail as a
    promotion by `looml run` (so `looml models rollback` undoes it); whether it moved, and why."""
    from looml.store.audit import Decision, audit_log
    from looml.store.registry import record_move
    from looml.store.versions import champion_version

    if not compared:
        return False, ""
    move, why = promotion(spec.registry.promote, compared)
    name = spec.registry.model_name
    now = champion_version(tracking_uri, name)
    if now == version:  # an earlier attempt at this run moved it, or someone did by hand
        return move, why if move else f"v{version} is the champion"
    if now != compared["champion"]:  # the comparison is kept with this run's work (`_compare`)
        return False, (f"the champion is now v{now}, not v{compared['champion']} as when this model was "
                       f"compared; nothing was moved (`looml models promote {version}` makes it champion)")
    if not move:
        return False, why
    record_move(tracking_uri, audit_log(tracking_uri, home), Decision(
        action="promote", model_name=name, champion_before=now, champion_after=version, challenger=version,
        reason=why, evidence={"comparison": compared}, by="looml run"))
    return True, why


def _digests(lineage_text: str) -> dict[str, str] | None:
    """The lineage's three digests (sha256 hex, as the store names artifacts); None when it is not
    a lineage document looml wrote."""
    try:
        found = json.loads(lineage_text)
    except ValueError:
        return None
    keys = ("snapshot", "split", "evaluated_pipeline")
    if not isinstance(found, dict) or not all(isinstance(found.get(k), str) and _SHA256.fullmatch(found[k])
                                              for k in keys):
        return None
    return {k: found[k] for k in keys}


def _not_in(rows: pl.DataFrame, seen: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """For each row of `rows`, whether no row of `seen` has the same values in `columns` (those
    both have), compared as text so that a type change between snapshots does not matter."""
    shared = [c for c in columns if c in rows.columns and c in seen.columns]

    def keys(frame: pl.DataFrame) -> pl.Series:
        return frame.select(pl.col(shared).cast(pl.String)).hash_rows(seed=0)

    return ~keys(rows).is_in(keys(seen)).to_numpy()


def _what(outcomes: Any) -> str:
    if outcomes.task == "regression":
        return "a number"
    return f"the classes {', '.join(map(str, outcomes.classes))}"
