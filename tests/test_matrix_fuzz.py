"""Whatever a user does to the matrix file, envplane answers with a Matrix or a located error."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envplane.errors import MatrixError
from envplane.matrix import Matrix, load_matrix_text

EXAMPLE = Path(__file__).parent.parent / "examples/sunday/config/environment-matrix.yaml"
INHERIT = Path(__file__).parent / "data" / "matrix" / "inherit.yaml"  # extends and templates
TEXT = EXAMPLE.read_text()
SOURCES = [TEXT.splitlines(), INHERIT.read_text().splitlines()]
NAME = "fuzz/environment-matrix.yaml"
LOCATED = re.compile(re.escape(NAME) + r":\d+: ")

odd_values = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(
        [
            "true",
            "no",
            "~",
            "[]",
            "{}",
            "[1, 2]",
            "{a: 1}",
            "''",
            "&x 1",
            "*x",
            "!!python/object:os.system ls",
            "!custom x",
            "1e999",
            ".nan",
            "0o17",
            "2024-01-01",
            '"unterminated',
            "- item",
            "10.0.0.0/33",
            "us-east-9",
        ]
    ),
    st.text(max_size=12),
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "retype", "junk", "truncate", "chars"]))
        if op == "delete":
            del lines[i]
        elif op == "retype" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(odd_values)}"
        elif op == "junk":
            indent = " " * draw(st.sampled_from([0, 2, 4, 6, 8, 12]))
            key = draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
            lines.insert(i, f"{indent}{key}: {draw(odd_values)}")
        elif op == "truncate":
            text = "\n".join(lines)
            return text[: draw(st.integers(0, len(text)))]
        else:
            pos = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + draw(st.text(max_size=5)) + lines[i][pos:]
    return "\n".join(lines) + "\n"


@settings(
    max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(mutated())
def test_any_mutation_loads_or_fails_with_a_located_matrix_error(text: str) -> None:
    try:
        matrix = load_matrix_text(text, NAME)
    except MatrixError as exc:
        assert LOCATED.match(str(exc)), str(exc)
        assert exc.line is not None and exc.line >= 1
    else:
        assert isinstance(matrix, Matrix)
        for name in matrix.environments:  # a loaded matrix answers every question about it
            matrix.services_for(name)
            matrix.variables_for(name)
            matrix.strategy_for(name)


def test_the_unmutated_example_loads() -> None:
    assert isinstance(load_matrix_text(TEXT, NAME), Matrix)
