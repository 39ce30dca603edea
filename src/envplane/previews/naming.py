"""Branch -> preview environment name: lower-case, `[a-z0-9-]`, a prefix, at most 30
characters (`names.check_env_name`), and the same branch always gives the same name.

A branch that is already clean (`fix-login`) keeps its text: `pr-fix-login`. Any other
branch - one cleaning changed (`Feature/Login`, `feature_login`, `fix..typo`) or one cut to
fit - gets a short hash of the branch's exact text as a suffix, so two branches that clean
or cut to the same text never share a name, and nothing but the branch decides the name
(no lookup in the store, no counter: a CI job on any machine computes the same one).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from envplane.errors import BadInput
from envplane.matrix.models_previews import PREFIX_RE
from envplane.names import check_env_name

DEFAULT_PREFIX = "pr-"
MAX_NAME = 30
HASH_LEN = 6  # 24 bits: a clash needs ~4,000 previews of branches that clean alike
MAX_PREFIX = 12  # leaves room for some of the branch and the hash
_INVALID_RUN = re.compile(r"[^a-z0-9]+")


def check_prefix(prefix: str) -> str:
    """The prefix as used in names (always ending in '-'); bad input when it is not one."""
    if not isinstance(prefix, str) or not PREFIX_RE.fullmatch(prefix):
        raise BadInput(
            f"invalid preview prefix {prefix!r}: start with a letter; use 1 to {MAX_PREFIX} "
            "characters from a-z, 0-9 and '-'",
            hint="for example `prefix: pr-` under `previews:` in the matrix",
        )
    return prefix.rstrip("-") + "-"


def clean(branch: str) -> str:
    """The branch as name text: accents dropped (é -> e), lower-cased, every run of other
    characters one '-', no '-' at either end. Empty when nothing usable is left."""
    ascii_text = (
        unicodedata.normalize("NFKD", branch).encode("ascii", "ignore").decode("ascii").lower()
    )
    return _INVALID_RUN.sub("-", ascii_text).strip("-")


def branch_hash(branch: str) -> str:
    # surrogatepass: any Python string hashes, even one with lone surrogates.
    return hashlib.sha256(branch.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LEN]


def preview_name(branch: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The environment name of the preview of `branch`."""
    head = check_prefix(prefix)
    text = clean(branch) if isinstance(branch, str) else ""
    if not text:
        raise BadInput(
            f"branch {branch!r} has no letter or digit to name a preview after",
            hint="pass the branch's name, e.g. --branch feature/login",
        )
    if text == branch and len(head) + len(text) <= MAX_NAME:
        return check_env_name(head + text, what="preview name")
    room = MAX_NAME - len(head) - HASH_LEN - 1
    body = text[:room].rstrip("-")
    name = f"{head}{body}-{branch_hash(branch)}" if body else f"{head}{branch_hash(branch)}"
    return check_env_name(name, what="preview name")
