"""Property: whatever a user does to the matrix file, `envplane check` answers 0 or 2 with a
located message, never a traceback (run in-process through click's runner for speed)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from envplane.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sunday"
TEXT = (EXAMPLE / "config" / "environment-matrix.yaml").read_text()
LINES = TEXT.splitlines(keepends=True)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["drop", "dup", "junk", "retype", "indent", "truncate"]))
        if kind == "drop":
            del lines[i]
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "junk":
            lines.insert(
                i,
                draw(
                    st.sampled_from(
                        [
                            "  bogus_key: 1\n",
                            "- x\n",
                            "a: [\n",
                            "\t\n",
                            "!!python/object:os.system x\n",
                            "&a [*a]\n",
                        ]
                    )
                ),
            )
        elif kind == "retype":
            lines[i] = re.sub(
                r": .*$",
                draw(st.sampled_from([": [1, 2]", ": {}", ": -5", ": ''", ": null"])),
                lines[i],
            )
        elif kind == "indent":
            lines[i] = "   " + lines[i]
        else:
            lines = lines[:i]
    return "".join(lines)


@settings(max_examples=60, deadline=None)
@given(text=mutated())
def test_check_never_tracebacks(text: str) -> None:
    import tempfile

    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # as root the run user must reach ENVPLANE_HOME (check verifies it)
        (root / "config").mkdir()
        (root / "config" / "environment-matrix.yaml").write_text(text)
        (root / "templates").symlink_to(EXAMPLE / "templates")
        matrix = str(root / "config" / "environment-matrix.yaml")
        result = runner.invoke(
            cli, ["-f", matrix, "check"], env={"ENVPLANE_HOME": str(root / "home")}
        )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    # 2: bad input; 3: a valid matrix a policy refuses (a mutation removed what a rule requires).
    assert result.exit_code in (0, 2, 3), result.output
    if result.exit_code in (2, 3):
        # Located in the matrix, or in a template when a placeholder's variable was mutated away.
        assert re.search(r"(environment-matrix\.yaml(:\d+)?|config\.yaml:\d+): ", result.output), (
            result.output
        )
        assert "Traceback" not in result.output
