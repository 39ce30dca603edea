"""Preview names from branch names: always a valid environment name, stable, distinct."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envplane.errors import BadInput
from envplane.names import check_env_name
from envplane.previews.naming import check_prefix, preview_name


def test_a_clean_branch_keeps_its_text() -> None:
    assert preview_name("fix-login") == "pr-fix-login"
    assert preview_name("fix-login", prefix="preview") == "preview-fix-login"


def test_a_typical_branch_is_cleaned_and_hashed() -> None:
    name = preview_name("feature/JIRA-123_Add-Thing")
    assert name.startswith("pr-feature-jira-123-add")
    assert check_env_name(name) == name and len(name) <= 30
    assert preview_name("feature/JIRA-123_Add-Thing") == name  # stable
    # cleaning alike is not being alike: the hash keeps them apart
    assert preview_name("feature/jira-123-add-thing") != name


def test_a_long_branch_is_cut_with_a_hash() -> None:
    branch = "feature-" + "x" * 192
    assert len(branch) == 200
    name = preview_name(branch)
    assert len(name) == 30 and check_env_name(name) == name
    assert name.startswith("pr-feature-xxx")
    assert preview_name(branch) == name


def test_two_branches_that_cut_to_the_same_text_differ() -> None:
    a = "feature/" + "a" * 40 + "/one"
    b = "feature/" + "a" * 40 + "/two"
    na, nb = preview_name(a), preview_name(b)
    assert na != nb
    assert na[:-6] == nb[:-6]  # the same cut text, different hash
    for n in (na, nb):
        assert check_env_name(n) == n


def test_unicode_and_dots() -> None:
    name = preview_name("feature/café-Über")
    assert name.startswith("pr-feature-cafe-uber-") and check_env_name(name) == name
    dotted = preview_name("fix..typo")
    assert dotted.startswith("pr-fix-typo-") and check_env_name(dotted) == dotted
    assert preview_name("fix-typo") == "pr-fix-typo" != dotted


@pytest.mark.parametrize("branch", ["", "..", "///", "日本語", "   ", "_-_"])
def test_a_branch_with_nothing_usable_is_bad_input(branch: str) -> None:
    with pytest.raises(BadInput, match="no letter or digit"):
        preview_name(branch)


@pytest.mark.parametrize("prefix", ["", "-pr", "PR-", "a" * 13, "p/r", "9pr"])
def test_a_bad_prefix_is_bad_input(prefix: str) -> None:
    with pytest.raises(BadInput, match="invalid preview prefix"):
        check_prefix(prefix)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["pr-", "pr", "preview-", "a", "abcdefghijkl"]))
def test_any_branch_gives_a_valid_stable_name_or_bad_input(branch: str, prefix: str) -> None:
    try:
        name = preview_name(branch, prefix)
    except BadInput as exc:
        assert "no letter or digit" in exc.message
        return
    assert check_env_name(name) == name
    assert preview_name(branch, prefix) == name


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_different_branches_give_different_names(a: str, b: str) -> None:
    try:
        na, nb = preview_name(a), preview_name(b)
    except BadInput:
        return
    if a != b:
        assert na != nb
