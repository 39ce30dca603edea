"""The YAML loader: plain data with line numbers, and every unsafe construct refused."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from envplane.errors import MatrixError
from envplane.matrix import yamlsafe
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


# --- issue 9, item 18: the bound is on what aliases copy, not on honest size ---------------


def test_a_large_document_without_aliases_loads() -> None:
    """24,000 nodes written out are a big matrix, not a bomb."""
    text = "".join(f"k{i}: {{a: 1, b: [x, y], c: {{d: e}}}}\n" for i in range(3000))
    data, lines = load_yaml(text, NAME)
    assert len(data) == 3000 and data["k2999"] == {"a": 1, "b": ["x", "y"], "c": {"d": "e"}}
    assert lines[("k2999", "c", "d")] == 3000


def test_aliases_are_bounded_by_what_they_copy_however_large_the_document() -> None:
    honest = "".join(f"k{i}: [1, 2, 3]\n" for i in range(1500))  # 6,000 nodes of its own
    copies = "base: &b [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"  # 10 nodes per copy
    fine = honest + copies + "".join(f"c{i}: *b\n" for i in range(1999))  # 19,990 copied
    data, _ = load_yaml(fine, NAME)
    assert data["c1998"] == list(range(1, 10))
    bomb = honest + copies + "".join(f"c{i}: *b\n" for i in range(2001))  # 20,010 copied
    err = refused(bomb, 1500 + 1 + 2001, "the value of 'c2000' expands to more than 20000")
    assert err.hint is not None and "alias" in err.hint and "extends" in err.hint


# --- libyaml and the pure loader: the same matrices load, as the same data ------------------


def _both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    def run() -> object:
        try:
            data, lines = load_yaml(text, NAME)
        except MatrixError as exc:
            return ("refused", str(exc), exc.hint)
        return ("loaded", repr(data), sorted(lines.items(), key=repr))

    fast = run()
    with monkeypatch.context() as patch:
        patch.setattr(yamlsafe, "_FastLoader", None)
        pure = run()
    return fast, pure


@pytest.mark.parametrize(
    "text",
    [
        "a: b\tc\n",  # libyaml takes a tab inside a plain scalar, PyYAML does not
        "m: {a: x?, b: 1}\n",  # nor '?' inside a flow plain scalar
        "a: 1\n\ufeff  b: 2\n",  # nor a byte order mark inside the text
        "a: [" * 70 + "]" * 70 + "\n",  # too deep: the same message
        "a: &a [*a]\n",
        "a: !!python/name:os.system\n",
        "a: 1\na: 2\n",
    ],
)
def test_where_libyaml_and_pyyaml_differ_pyyaml_decides(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, pure = _both(text, monkeypatch)
    assert fast == pure


def test_libyaml_and_pyyaml_agree_on_mutated_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    if yamlsafe._FastLoader is None:
        pytest.skip("PyYAML was built without libyaml")
    seeds = [
        (Path(__file__).parent / "data" / "matrix" / name).read_text()
        for name in ("seed.yaml", "inherit.yaml")
    ]
    pieces = [": ", "- ", "[", "]", "{", "}", ",", "'", '"', "#", "\n", "  ", "&a ", "*a", "!!str "]
    pieces += ["|\n", "---\n", "\\", "é", "\x85", "\r\n", "%", "@", "`", "~", "1e3", "<<: *a\n"]
    rng = random.Random(9)  # (45,000 such cases agreed when the fast path was written)
    for _ in range(120):
        chars = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars) + 1)
            if rng.random() < 0.6:
                chars[at:at] = rng.choice(pieces)
            else:
                del chars[at : at + rng.randint(1, 5)]
        text = "".join(chars)
        fast, pure = _both(text, monkeypatch)
        assert fast == pure, text
