"""The registry verbs by hand: `looml models promote`, `rollback` and `history`, recorded in the
same audit trail as the loop's decisions (`store.audit`), under the project's lock.
"""

from __future__ import annotations

from pathlib import Path

from looml.errors import Problem, RegistryError
from looml.monitor.project import LOCK_WAIT_SECONDS, Project, champion_of, project_of
from looml.spec import Spec
from looml.store.audit import Decision
from looml.store.lock import project_lock
from looml.store.registry import record_move, version_info
from looml.store.versions import champion_version

__all__ = ["history", "promote", "rollback"]


def promote(spec: Spec | str | Path, version: str, *, by: str = "looml models promote",
            reason: str = "promoted by hand") -> Decision:
    """Make `version` the champion (by hand), recorded in the audit trail."""
    project = project_of(spec)
    version_info(project.tracking_uri, project.name, version)  # raises if there is no such version
    with project_lock(project.home, by, wait=LOCK_WAIT_SECONDS):
        before = champion_version(project.tracking_uri, project.name)
        decision = Decision(action="promote", model_name=project.name, champion_before=before,
                            champion_after=version, challenger=version, reason=reason, by=by)
        record_move(project.tracking_uri, project.audit, decision)
    return decision


def rollback(spec: Spec | str | Path, *, by: str = "looml models rollback") -> Decision:
    """Restore the champion that the latest promotion not yet rolled back replaced: rollbacks walk
    back through the promotions (v3 -> v2 -> v1), they do not undo each other."""
    project = project_of(spec)
    with project_lock(project.home, by, wait=LOCK_WAIT_SECONDS):
        return _rollback(project, by)


def _rollback(project: Project, by: str) -> Decision:
    current = champion_of(project)
    moves: list[Decision] = []  # promotions not rolled back, oldest first
    for d in (d for d in project.decisions() if d.state == "done"):
        if d.action == "promote" and d.champion_before not in (None, d.champion_after):
            moves.append(d)
        elif d.action == "rollback" and moves:
            moves.pop()
    while moves and moves[-1].champion_before == current:  # the alias was moved outside looml
        moves.pop()
    if not moves:
        raise RegistryError(Problem(loc="champion", value=f"{project.name} v{current}",
                                    message="no recorded promotion made this version champion",
                                    fix="see `looml models history`; promote a version by hand with "
                                        "`looml models promote VERSION`"))
    previous = moves[-1].champion_before
    decision = Decision(action="rollback", model_name=project.name, champion_before=current,
                        champion_after=previous, reason=f"rolled back to v{previous} (champion before "
                        f"the {moves[-1].action} of {moves[-1].at})", by=by)
    record_move(project.tracking_uri, project.audit, decision)
    return decision


def history(spec: Spec | str | Path) -> list[Decision]:
    """Every recorded decision about the spec's model, oldest first."""
    project = project_of(spec)
    return project.decisions()
