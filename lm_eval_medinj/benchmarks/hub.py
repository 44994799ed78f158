"""Hub datasets at pinned revisions: the one table of the revisions the tasks and training read.

Every Hub dataset is downloaded at the revision :data:`PINNED_REVISIONS` names, unless the caller
passes another (``--metadata '{"revision": ...}'`` for lm-eval tasks, ``--revision`` for
training): one revision for every dataset, or a mapping ``{repo_id: revision}``. ``"main"``
reads the latest. The commit actually read is returned with the files and written into every
document (``data_revision``), so ``medinj report`` can refuse to compare runs that read
different data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lm_eval_medinj.benchmarks.layout import DATA_DIR_ENV, DataNotFoundError

log = logging.getLogger(__name__)

# repo id -> commit. A repo missing here is read at its latest revision, with a warning; the commit
# read is recorded either way. Where each comes from: docs/STUDY.md ("Pinned data").
PINNED_REVISIONS: dict[str, str] = {
    "qanastek/frenchmedmcqa": "be9a03fde01d9f05107b14941af1ad99897691cf",
}
_WARNED: set[str] = set()  # repos already said to be unpinned, once per process
# One revision for every dataset, or one per repo id; None: the pinned ones.
Revision = str | Mapping[str, str] | None


@dataclass(frozen=True)
class Snapshot:
    """A local copy of (part of) a Hub dataset, and the commit it was read at."""

    repo: str
    path: Path
    revision: str


def revision_for(repo: str, revision: Revision) -> str | None:
    """The revision to read ``repo`` at: the caller's, else the pinned one (``None``: the latest)."""
    if isinstance(revision, str):
        return revision
    if isinstance(revision, Mapping) and repo in revision:
        return str(revision[repo])
    pinned = PINNED_REVISIONS.get(repo)
    if pinned is None and repo not in _WARNED:
        _WARNED.add(repo)
        log.warning("%s has no pinned revision in %s: reading its latest revision", repo, __name__)
    return pinned


def snapshot(repo: str, allow_patterns: list[str] | None = None, revision: Revision = None) -> Snapshot:
    """Download (or find in the cache) ``repo`` at its revision; the files and the commit read."""
    from huggingface_hub import snapshot_download

    wanted = revision_for(repo, revision)
    try:
        path = Path(snapshot_download(repo, repo_type="dataset", revision=wanted, allow_patterns=allow_patterns))
    except Exception as error:  # network, auth, offline mode or an unknown revision: say what to do instead
        at = f" at revision {wanted}" if wanted else ""
        raise DataNotFoundError(
            f"could not download dataset {repo}{at} from the Hugging Face Hub ({error}); "
            f'pass --metadata \'{{"data_dir": "PATH"}}\' or set {DATA_DIR_ENV} to a local copy'
        ) from error
    # snapshot_download returns .../snapshots/<commit>/ for a repo revision
    return Snapshot(repo, path, path.name if len(path.name) == 40 else (wanted or "unknown"))


def data_root(
    data_dir: Path | None, repo: str, allow_patterns: list[str] | None, revision: Revision
) -> tuple[Path, str | None]:
    """The folder a benchmark reads: ``data_dir``, else ``repo``'s snapshot; and its Hub commit (``None``: local)."""
    if data_dir is not None:
        return data_dir, None
    copy = snapshot(repo, allow_patterns, revision)
    return copy.path, copy.revision
