"""Where a run's code came from, as MLflow's standard source tags.

MLflow's runs table shows ``mlflow.source.name`` in its Source column and links the git
commit of ``mlflow.source.git.commit``. The commit is read from the ``.git`` folder of
the checkout that holds the learnai package (not the working directory: a run launched
elsewhere still ran this code). GitPython runs ``git version`` when imported, a process
per run and a failure where git is not installed, so the few files are read here:
``HEAD``, then the branch's loose ref or ``packed-refs`` (worktrees included).
"""

from __future__ import annotations

from pathlib import Path

SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_BRANCH = "mlflow.source.git.branch"


def source_tags(code: Path | None = None) -> dict[str, str]:
    """MLflow's source tags for the code at ``code`` (default: learnai's own checkout):
    its commit and branch when it is in a git checkout, else only the source name."""
    if code is None:
        code = Path(__file__).resolve().parents[1]  # the package: the Source column shows 'learnai'
    tags = {SOURCE_NAME: str(code), SOURCE_TYPE: "LOCAL"}
    found = git_head(code)  # read each time (a few small files): the checkout may move on
    if found is not None:
        commit, branch = found
        tags[GIT_COMMIT] = commit
        if branch:
            tags[GIT_BRANCH] = branch
    return tags


def git_head(path: Path) -> tuple[str, str] | None:
    """(commit, branch) of the git checkout holding ``path``; branch is '' when detached;
    None outside a checkout or when its files cannot be read."""
    git_dir = _git_dir(path)
    if git_dir is None:
        return None
    try:
        head = (git_dir / "HEAD").read_text().strip()
        common = git_dir
        if (git_dir / "commondir").is_file():  # a worktree keeps its refs in the main .git
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        if not head.startswith("ref:"):
            return (head, "") if _is_sha(head) else None
        ref = head.split(":", 1)[1].strip()
        commit = _read_ref(common, ref) or _read_ref(git_dir, ref)
    except OSError:
        return None
    if commit is None:
        return None
    return commit, ref.removeprefix("refs/heads/")


def _git_dir(path: Path) -> Path | None:
    for folder in [path, *path.parents]:
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dot_git.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text.split(":", 1)[1].strip()).resolve()
    return None


def _read_ref(git_dir: Path, ref: str) -> str | None:
    loose = git_dir / ref
    if loose.is_file():
        sha = loose.read_text().strip()
        return sha if _is_sha(sha) else None
    packed = git_dir / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref and _is_sha(parts[0]):
                return parts[0]
    return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)
