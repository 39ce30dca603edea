"""The YAML loader: plain data with line numbers, and every unsafe construct refused."""

from __future__ import annotations

import time

import pytest

from envplane.errors import MatrixError
from envplane.matrix.yamlsafe import MAX_DEPTH, load_yaml

NAME = "m.yaml"


def refused(text: str, line: int, fragment: str) -> MatrixError:
    with pytest.raises(MatrixError) as info:
        load_yaml(text, NAME)
    assert str(info.value).startswith(f"{NAME}:{line}: "), str(info.value)
    assert fragment in str(info.value), str(info.value)
    return info.value


def test_plain_data_and_lines() -> None:
    text = "a: 1\nb:\n  - x\n  - {c: null, d: 1.5, e: yes}\nwhen: 2024-12-01\n"
    data, lines = load_yaml(text, NAME)
    assert data == {"a": 1, "b": ["x", {"c": None, "d": 1.5, "e": True}], "when": "2024-12-01"}
    assert lines[("a",)] == 1 and lines[("b", 0)] == 3
    assert lines[("b", 1, "d")] == 4 and lines[("when",)] == 5


def test_aliases_expand_to_copies_within_bounds() -> None:
    data, _ = load_yaml("base: &b {x: 1}\nother: *b\n", NAME)
    assert data["other"] == {"x": 1}


def test_duplicate_keys_name_both_lines() -> None:
    err = refused("env:\n  a: 1\n  b: 2\n  a: 3\n", 4, "duplicate key 'a'")
    assert "first at line 2, again at line 4" in str(err)


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object:os.system ls\n",
        "a: !!python/name:os.system\n",
        "a: !!python/object/apply:os.system [ls]\n",
        "a: !custom x\n",
        "a: !!binary aGk=\n",
        "a: !!set {x}\n",
        "a: !!omap [{x: 1}]\n",
    ],
)
def test_non_core_tags_are_refused(text: str) -> None:
    refused(text, 1, "is not allowed")


def test_merge_keys_are_refused_with_a_pointer_to_extends() -> None:
    err = refused("base: &b {x: 1}\nother:\n  <<: *b\n", 3, "merge keys")
    assert err.hint is not None and "extends" in err.hint


def test_billion_laughs_fails_fast() -> None:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
        prev = name
    started = time.perf_counter()
    err = refused(text, 5, "the value of 'e' expands to more than")
    assert time.perf_counter() - started < 1.0
    assert err.hint is not None and "alias" in err.hint


def test_recursive_alias_is_refused() -> None:
    refused("a: &a [*a]\n", 1, "deeper than")


def test_deep_nesting_is_refused_before_python_recursion() -> None:
    refused("a: " + "[" * 5000 + "]" * 5000 + "\n", 1, f"deeper than {MAX_DEPTH}")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "empty"),
        ("# only a comment\n", 1, "empty"),
        ("- a\n- b\n", 1, "top level must be a mapping"),
        ("just text\n", 1, "top level must be a mapping"),
        ("a: 1\n1: x\n", 2, "key '1' is read as int"),
        ("on: x\n", 1, "key 'on' is read as bool"),
        ("~: x\n", 1, "read as NoneType"),
        ("? [a]\n: x\n", 1, "plain string"),
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "malformed YAML"),
        ("a:\n  b: 1\n c: 2\n", 3, "malformed YAML"),
        ("a: 'x\n", 2, "malformed YAML"),
        ("a: *nowhere\n", 1, "undefined alias"),
        ("a: 1\n---\nb: 2\n", 2, "single document"),
        ("a: 1\nb: \x07\n", 2, "control"),
        ("a: !!int twelve\n", 1, "not a valid int"),
    ],
)
def test_bad_documents(text: str, line: int, fragment: str) -> None:
    refused(text, line, fragment)
