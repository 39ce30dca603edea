"""Values are data, and the template sandbox answers bad templates with located errors.

Issue 9, item 3: whatever text a variable holds, a rendered config keeps the structure its
template gives it (the same ConfigMaps, the same keys), every embedded JSON block stays valid
JSON with the same keys, and env.js reads each value back as a JavaScript string.
Item 5: sandbox violations and runaway templates are bad input (exit 2, the template's file
and line), within bounds of output size, loop length and time, and never a crash log.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envplane.errors import MatrixError
from envplane.matrix import Matrix, load_matrix
from envplane.render.cloud.variables import cloud_variables
from envplane.render.local import local_variables, port_keys
from envplane.render.templates import ConfigMap, render_config_maps
from tests.conftest import Project, open_tmpdir

REPO = Path(__file__).resolve().parents[1]
MATRIX = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"
TEMPLATES = REPO / "examples" / "sunday" / "templates" / "environments"
ENVS = ["development", "staging", "production"]

# Every placeholder of the example's templates that holds text (a matrix's `variables:` can
# set the first group; the targets set the others, tested the same way).
TEXT_VARIABLES = [
    "ENVIRONMENT_NAME",
    "PROJECT",
    "NAMESPACE",
    "VERSION",
    "POSTGRES_DB",
    "SENTRY_DSN",
    "ANALYTICS_ID",
    "POSTGRES_HOST",
    "REDIS_HOST",
    "LISTEN",
    "STATIC_ROOT",
    "PUBLIC_URL",
    "PUBLIC_WS_URL",
    "BACKEND_URL",
]
# Placeholders outside quotes in the JSON blocks: `"port": {{POSTGRES_PORT}}`.
BARE_JSON_VARIABLES = ["POSTGRES_PORT", "POSTGRES_SSL", "REDIS_PORT"]

NASTY = [
    "'",
    '"',
    "\\",
    "\n",
    "\r\n",
    ": |",
    "\n  injected.js: |\n    alert(1)//",
    "\n---\n",
    "{{",
    "}}",
    "{%",
    "#",
    "- ",
    "{",
    "}",
    "[",
    ",",
    ": ",
    "&a",
    "*a",
    "!!python/object",
    "\x00",
    "\t",
    "é",
    "\u2028",
    "</script>",
    "${tf:x}",
    "qv",
]
TEXT = st.one_of(st.text(), st.lists(st.sampled_from(NASTY) | st.text(max_size=3)).map("".join))


@lru_cache(maxsize=1)
def _matrix() -> Matrix:
    return load_matrix(MATRIX)


def _variables(env: str, target: str) -> dict[str, Any]:
    matrix = _matrix()
    if target == "cloud":
        return cloud_variables(matrix, env)
    ports = {key: 40000 + n for n, key in enumerate(port_keys(matrix, env))}
    return local_variables(matrix, env, Path("/envplane-home/environments") / env, ports)


def _render(env: str, variables: dict[str, Any]) -> dict[str, ConfigMap]:
    files = sorted((TEMPLATES / env).glob("*.yaml"))
    return {cm.name: cm for cm in render_config_maps(files, variables)}


def _structure(maps: dict[str, ConfigMap]) -> list[tuple[str, list[str]]]:
    return [(name, list(cm.data)) for name, cm in maps.items()]


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


def _json_blocks(maps: dict[str, ConfigMap]) -> dict[tuple[str, str], Any]:
    """Every data value of the neutral rendering that is a JSON object (the embedded blocks)."""
    blocks = {}
    for name, cm in maps.items():
        for key, value in cm.data.items():
            try:
                parsed = json.loads(value)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                blocks[(name, key)] = parsed
    return blocks


JS_ENTRY = re.compile(r'^\s*([A-Z_]+): ("(?:[^"\\\n]|\\.)*"),$', re.MULTILINE)


def _js_strings(env_js: str) -> dict[str, str]:
    return {key: json.loads(literal) for key, literal in JS_ENTRY.findall(env_js)}


@pytest.fixture(scope="module")
def neutral() -> dict[tuple[str, str], dict[str, ConfigMap]]:
    out = {}
    for env in ENVS:
        for target in ("local", "cloud"):
            variables = _variables(env, target)
            variables.update(dict.fromkeys(TEXT_VARIABLES, "x"))
            out[(env, target)] = _render(env, variables)
    return out


@pytest.mark.parametrize("target", ["local", "cloud"])
@pytest.mark.parametrize("env", ENVS)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.fixed_dictionaries(dict.fromkeys(TEXT_VARIABLES, TEXT)))
def test_any_text_is_data(
    neutral: dict[tuple[str, str], dict[str, ConfigMap]],
    env: str,
    target: str,
    values: dict[str, str],
) -> None:
    variables = _variables(env, target)
    variables.update(values)
    maps = _render(env, variables)
    base = neutral[(env, target)]

    # The structure is the template's: the same ConfigMaps with the same keys, in order.
    assert _structure(maps) == _structure(base)

    # Every embedded JSON block is valid JSON with the same keys (and list lengths).
    for (name, key), shape in _json_blocks(base).items():
        parsed = json.loads(maps[name].data[key])
        assert _shape(parsed) == _shape(shape), (name, key)

    # Values arrive verbatim wherever they sit: YAML plain and quoted scalars, block
    # scalars, inside JSON strings.
    env_name = values["ENVIRONMENT_NAME"]
    assert maps["app-config"].namespace == values["NAMESPACE"]
    assert maps["app-config"].data["DEPLOYMENT_ENVIRONMENT"] == env_name
    database = json.loads(maps["backend-config"].data["database.json"])["connection"]
    assert database["host"] == values["POSTGRES_HOST"]
    assert database["database"] == values["POSTGRES_DB"]
    redis = json.loads(maps["backend-config"].data["redis.json"])
    assert redis["connection"]["keyPrefix"] == f"sunday:{env_name}:"
    assert redis["cluster"]["nodes"][1]["host"] == f"redis-1.{env_name}.cluster.local"
    nginx = maps["frontend-config"].data["nginx.conf"]
    assert f"    listen {values['LISTEN']};\n" in nginx
    assert f"proxy_pass {values['BACKEND_URL']}/;" in nginx

    # env.js: each value reads back as a JavaScript (JSON) string; the script around the
    # literals is the template's, whatever the values.
    env_js = maps["frontend-config"].data["env.js"]
    assert _js_strings(env_js) == {
        "API_URL": values["PUBLIC_URL"] + "/api",
        "WS_URL": values["PUBLIC_WS_URL"] + "/ws",
        "ENVIRONMENT": env_name,
        "VERSION": values["VERSION"],
        "SENTRY_DSN": values["SENTRY_DSN"],
        "ANALYTICS_ID": values["ANALYTICS_ID"],
    }
    skeleton = JS_ENTRY.sub(r"\1: S,", env_js)
    assert skeleton == JS_ENTRY.sub(r"\1: S,", base["frontend-config"].data["env.js"])


@pytest.mark.parametrize("name", BARE_JSON_VARIABLES)
@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(
        TEXT,
        st.sampled_from(
            ["5432", "true", "null", '"x"', "1e3", "-0", "{}", "[1]", '1, "x": 2', "NaN", ""]
        ),
    )
)
def test_a_placeholder_outside_json_quotes_is_a_json_scalar_or_refused(
    name: str, value: str
) -> None:
    variables = _variables("staging", "local")
    variables[name] = value
    template = TEMPLATES / "staging" / "config.yaml"
    try:
        maps = _render("staging", variables)
    except MatrixError as exc:
        assert f"{{{{{name}}}}}" in exc.message
        lines = template.read_text().splitlines()
        assert exc.file == str(template) and exc.line is not None
        assert f"{{{{{name}}}}}" in lines[exc.line - 1]
        return
    parsed = json.loads(value)
    assert not isinstance(parsed, (dict, list))
    key = "redis.json" if name == "REDIS_PORT" else "database.json"
    block = json.loads(maps["backend-config"].data[key])
    field = "ssl" if name == "POSTGRES_SSL" else "port"
    assert block["connection"][field] == parsed


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_js_and_json_filters_round_trip(text: str) -> None:
    from envplane.render.sandbox import js_string, json_literal

    literal = js_string(text)
    assert json.loads(literal) == text
    assert literal.isascii() and "\n" not in literal and "\u2028" not in literal
    assert not set("<>&'") & set(literal)
    assert json.loads(json_literal(text)) == text


def _template(tmp_path: Path, data: str, **extra: str) -> Path:
    folder = tmp_path / "tpl"
    folder.mkdir(exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n{data}")
    for name, text in extra.items():
        (folder / name.replace("__", ".")).write_text(text)
    return path


def _data(path: Path, **variables: Any) -> dict[str, str]:
    (cm,) = render_config_maps([path], variables)
    return dict(cm.data)


def _refused(path: Path, **variables: Any) -> MatrixError:
    with pytest.raises(MatrixError) as caught:
        render_config_maps([path], variables)
    assert caught.value.file == str(path), caught.value
    return caught.value


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ("  {{ X }}: v\n", "a key"),
        ("  A: {'{{ X }}': 1}\n", "a key"),
        ("  a.json: '{\"{{ X }}\": 1}'\n", "a JSON key"),
    ],
)
def test_a_placeholder_may_not_be_a_key(tmp_path: Path, data: str, where: str) -> None:
    error = _refused(_template(tmp_path, data), X="k")
    assert error.line == 6 and f"{{{{ X }}}} is used as {where}" in error.message


def test_a_placeholder_may_not_name_a_config_map(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: '{{ X }}'\ndata: {}\n")
    error = _refused(path, X="app-config")
    assert error.line == 4 and "ConfigMap's name" in error.message


def test_the_issue_value_stays_in_its_key(tmp_path: Path) -> None:
    value = "x'\n  injected.js: |\n    alert(1)//"
    path = _template(tmp_path, "  env.js: |\n    var dsn = '{{ X }}';\n  other: \"{{ X }}\"\n")
    assert _data(path, X=value) == {"env.js": f"var dsn = '{value}';\n", "other": value}


def test_a_value_that_is_not_unicode_is_refused(tmp_path: Path) -> None:
    error = _refused(_template(tmp_path, "  A: x\n  B: '{{ X }}'\n"), X="a\ud800b")
    assert error.line == 7 and "not valid Unicode" in error.message


def test_a_json_template_that_is_not_json_is_refused(tmp_path: Path) -> None:
    error = _refused(_template(tmp_path, '  a.json: |\n    {"s": {{ X }}\n'), X="1")
    assert error.line == 7 and "a.json is not JSON" in error.message


def test_filters_see_values_and_give_one_value(tmp_path: Path) -> None:
    value = "a'\"b\n: |"
    data = (
        "  A: {% filter js %}{{ X }}/x{% endfilter %}\n"
        "  B: '{{ X | js }}'\n"
        "{% set captured %}{{ X }}{% endset %}"
        "  C: \"{{ 'same' if captured == X else 'different' }}\"\n"
    )
    result = _data(_template(tmp_path, data), X=value)
    assert json.loads(result["A"]) == value + "/x"
    assert json.loads(result["B"]) == value
    assert result["C"] == "same"


def test_macros_and_includes_are_structure_with_data_inside(tmp_path: Path) -> None:
    data = (
        '{% macro entry() %}  FROM_MACRO: "{{ X }}"\n{% endmacro %}{{ entry() }}'
        "{% macro wrap() %}  FROM_CALLER: '{{ caller() }}'\n{% endmacro %}"
        "{% call wrap() %}{{ X }}{% endcall %}"
        "{% include 'part.txt' %}"
    )
    path = _template(tmp_path, data, part__txt="  FROM_PARTIAL: {{ X }}\n")
    value = "v: |\n- x'\""
    assert _data(path, X=value) == dict.fromkeys(
        ["FROM_MACRO", "FROM_CALLER", "FROM_PARTIAL"], value
    )
    # A macro's placeholders are data too: one cannot name a key.
    keyed = _template(tmp_path, "{% macro e(n) %}  {{ n }}: x\n{% endmacro %}{{ e('k') }}")
    assert "is used as a key" in _refused(keyed).message


# --- item 5: the sandbox, through `envplane check` -------------------------------------------

SANDBOX_CASES = {
    "python internals": "{{ ''.__class__.__mro__ }}",
    "include outside": "{% include '/etc/passwd' %}",
    "include above": "{% include '../staging/config.yaml' %}",
    "huge range": "{{ range(100000000) | list | length }}",
    "huge string": "{{ 'a' * 300000000 }}",
}


@pytest.mark.parametrize("case", list(SANDBOX_CASES))
def test_sandbox_violations_are_bad_input(project: Project, case: str) -> None:
    template = project.root / "templates" / "environments" / "development" / "config.yaml"
    lines = template.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("  NODE_ENV:"))
    lines[at] = f'  NODE_ENV: "{SANDBOX_CASES[case]}"\n'
    template.write_text("".join(lines))
    private_tmp = open_tmpdir("envplane-tmpdir-")
    started = time.monotonic()
    try:
        result = project.run("check", timeout=90, TMPDIR=str(private_tmp))
        took = time.monotonic() - started
        crash_logs = list(private_tmp.glob("envplane-crash-*"))
    finally:
        shutil.rmtree(private_tmp, ignore_errors=True)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert f"config.yaml:{at + 1}: " in result.stderr, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert crash_logs == []
    assert took < 60


def test_the_issue_value_through_the_cli(project: Project, tmp_path: Path) -> None:
    project.edit_matrix('SENTRY_DSN: ""', 'SENTRY_DSN: "x\'\\n  injected.js: |\\n    alert(1)//"')
    assert project.run("check").returncode == 0
    out = tmp_path / "out"
    done = project.run("render", "staging", "--target", "cloud", "--out", str(out))
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("kubernetes/*-configmap-frontend-config.yaml")
    config_map = yaml.safe_load(path.read_text())
    assert sorted(config_map["data"]) == ["env.js", "nginx.conf"]
    strings = _js_strings(config_map["data"]["env.js"])
    assert strings["SENTRY_DSN"] == "x'\n  injected.js: |\n    alert(1)//"


# --- item 5: the bounds --------------------------------------------------------------------

AMPLIFIERS = [
    "{{ 'a' * 300000000 }}",
    "{{ ['a'] * 300000000 }}",
    "{{ 'a' | center(300000000) }}",
    "{{ 'a'.ljust(300000000) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ 'x' | indent(300000000) }}",
    "{{ range(10000) | join('x' * 1000000) }}",
    "{{ ('a' * 100000) | replace('a', 'b' * 1000) }}",
    "{{ 9 ** 999999999 }}",
    "{% set ns = namespace(x='a') %}{% for i in range(40) %}"
    "{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
    "{% set ns = namespace(x='a') %}{% for i in range(40) %}"
    "{% set ns.x = ns.x + ns.x %}{% endfor %}",
    "{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}"
    "{% endfor %}{{ ns.x }}",
    "{{ range(10000) | map('string') | map('center', 1000000) | list | length }}",
    "{{ range(100000000) }}",
]


@pytest.mark.parametrize("expression", AMPLIFIERS)
def test_nothing_large_is_built(tmp_path: Path, expression: str) -> None:
    started = time.monotonic()
    error = _refused(_template(tmp_path, f'  A: "{expression}"\n'))
    assert time.monotonic() - started < 20
    assert error.line == 6 and "rendering bound reached" in error.message, error.message


def test_output_size_is_bounded(tmp_path: Path) -> None:
    literal = _template(
        tmp_path, "  A: |\n{% for i in range(1100) %}    " + "x" * 1000 + "\n{% endfor %}"
    )
    assert "the rendered file of" in _refused(literal).message
    values = _template(tmp_path, '  A: "{% for i in range(1100) %}{{ X }}{% endfor %}"\n')
    assert "larger than 1,048,576" in _refused(values, X="y" * 1000).message
    fine = _template(tmp_path, '  A: "{% for i in range(900) %}{{ X }}{% endfor %}"\n')
    assert len(_data(fine, X="y" * 1000)["A"]) == 900_000


def test_template_size_is_bounded(tmp_path: Path) -> None:
    path = _template(tmp_path, "  A: x\n" + "# padding\n" * 110_000)
    assert "a template may have 1,048,576" in _refused(path).message


def test_range_length_is_bounded(tmp_path: Path) -> None:
    assert _data(_template(tmp_path, '  A: "{{ range(10000) | list | length }}"\n')) == {
        "A": "10000"
    }
    error = _refused(_template(tmp_path, '  A: "{{ range(10001) | list | length }}"\n'))
    assert "range() of 10,001 items; the limit is 10,000" in error.message


def _lowered(monkeypatch: pytest.MonkeyPatch, **bounds: float) -> None:
    from envplane.render import sandbox

    for name, value in bounds.items():
        monkeypatch.setattr(sandbox.limits, name, value)


NESTED = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"


def test_loop_steps_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _lowered(monkeypatch, MAX_STEPS=5_000)
    error = _refused(_template(tmp_path, f"{NESTED}  A: x\n"))
    assert error.line == 6 and "more than 5,000 loop iterations" in error.message


def test_repeated_text_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _lowered(monkeypatch, MAX_WORK_CHARS=100_000)
    body = "{% set s %}{% for i in range(1000) %}" + "t" * 500 + "{% endfor %}{% endset %}"
    error = _refused(_template(tmp_path, f"{body}  A: x\n"))
    assert "builds more than 100,000 characters" in error.message


def test_render_time_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _lowered(monkeypatch, MAX_RENDER_SECONDS=0.3, MAX_STEPS=10**12)
    started = time.monotonic()
    error = _refused(_template(tmp_path, f"{NESTED}  A: x\n"))
    assert time.monotonic() - started < 10
    assert "took longer than 0.3 s" in error.message


def test_recursion_and_runtime_errors_are_located(tmp_path: Path) -> None:
    error = _refused(
        _template(tmp_path, "{% macro f() %}{{ f() }}{% endmacro %}  A: '{{ f() }}'\n")
    )
    assert error.line == 6 and "recurses" in error.message
    error = _refused(_template(tmp_path, "  A: x\n  B: '{{ 1 / 0 }}'\n"))
    assert error.line == 7 and "ZeroDivisionError" in error.message
    error = _refused(_template(tmp_path, "  A: '{{ [].append(1) }}'\n"))
    assert error.line == 6 and "not allowed in a template" in error.message


def test_includes_stay_in_the_template_directory(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret\n")
    path = _template(tmp_path, "  A: |\n    {% include 'link.txt' %}\n", ok__txt="fine")
    (path.parent / "link.txt").symlink_to(outside)
    error = _refused(path)
    assert error.line == 7 and "outside the template directory" in error.message
    path.write_text(path.read_text().replace("link.txt", "ok.txt"))
    assert _data(path) == {"A": "fine\n"}
    for name in ("/etc/passwd", "../secret.txt", "sub/../../secret.txt"):
        path.write_text(path.read_text().replace("ok.txt", name))
        assert "outside the template directory" in _refused(path).message
        path.write_text(path.read_text().replace(name, "ok.txt"))


def test_plain_text_templates_share_the_sandbox() -> None:
    from envplane.render.templates import render_text

    with pytest.raises(MatrixError) as caught:
        render_text("a\n{{ 'a' * 300000000 }}\n", {}, filename="<default>")
    assert caught.value.line == 2 and "rendering bound reached" in caught.value.message
    with pytest.raises(MatrixError) as caught:
        render_text("{% include 'x' %}", {}, filename="<default>")
    assert "cannot include" in caught.value.message
    assert render_text("listen {{ L }};", {"L": "1:2"}, filename="<default>") == "listen 1:2;"
