"""Config templates: sandboxed Jinja2, undefined placeholders are errors, output is ConfigMaps.

A template directory `templates/environments/<name>/` holds YAML files of Kubernetes ConfigMaps
whose text has placeholders in the seed's `{{ENVIRONMENT_NAME}}` style. Rendering is text-level
(so placeholders may sit anywhere, as in the seed) and then parsed, so the result is data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from envplane.errors import MatrixError
from envplane.names import check_ident


@dataclass(frozen=True)
class ConfigMap:
    name: str
    namespace: str
    data: Mapping[str, str]
    source: str  # the template file it came from


@lru_cache(maxsize=1)
def _jinja() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def template_dir(templates_root: Path, template: str) -> Path:
    check_ident(template, what="template name")
    return templates_root / "environments" / template


def template_files(templates_root: Path, template: str) -> list[Path]:
    folder = template_dir(templates_root, template)
    if not folder.is_dir():
        raise MatrixError(
            f"config template {template!r} not found (looked for {folder})",
            file=str(folder),
            hint="create it with a config.yaml of ConfigMaps, or pick another --template",
        )
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _line_of_name(text: str, name: str) -> int | None:
    pattern = re.compile(r"{{[^}]*\b" + re.escape(name) + r"\b")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


def render_text(text: str, variables: Mapping[str, Any], *, filename: str) -> str:
    try:
        return _jinja().from_string(text).render(**variables)
    except TemplateSyntaxError as exc:
        raise MatrixError(
            exc.message or "template syntax error", file=filename, line=exc.lineno
        ) from None
    except UndefinedError as exc:
        match = re.search(r"'([^']+)' is undefined", str(exc))
        name = match.group(1) if match else "?"
        raise MatrixError(
            f"placeholder {{{{{name}}}}} has no value",
            file=filename,
            line=_line_of_name(text, name),
            hint=f"define {name} under `variables:` in the matrix (top level or per environment)",
        ) from None


def render_config_maps(files: list[Path], variables: Mapping[str, Any]) -> list[ConfigMap]:
    maps: list[ConfigMap] = []
    seen: dict[str, str] = {}
    for path in files:
        rendered = render_text(path.read_text(encoding="utf-8"), variables, filename=str(path))
        try:
            docs = [d for d in yaml.safe_load_all(rendered) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise MatrixError(
                f"rendered template is not valid YAML: {getattr(exc, 'problem', exc)}",
                file=str(path),
                line=mark.line + 1 if mark else None,
            ) from None
        for index, doc in enumerate(docs):
            maps.append(_config_map(doc, path, index, seen))
    return maps


def _config_map(doc: Any, path: Path, index: int, seen: dict[str, str]) -> ConfigMap:
    where = f"document {index + 1}"
    if not isinstance(doc, dict) or doc.get("kind") != "ConfigMap":
        raise MatrixError(f"{where} is not a ConfigMap", file=str(path), key="kind")
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str):
        raise MatrixError(f"{where} has no metadata.name", file=str(path), key="metadata.name")
    check_ident(name, what=f"ConfigMap name in {path}")
    if name in seen:
        raise MatrixError(
            f"ConfigMap {name!r} is defined twice (also in {seen[name]})", file=str(path)
        )
    seen[name] = str(path)
    data = doc.get("data") or {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise MatrixError(
            f"ConfigMap {name!r}: data values must be strings", file=str(path), key="data"
        )
    for key in data:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,253}", str(key)) or key in (".", ".."):
            raise MatrixError(
                f"ConfigMap {name!r}: invalid data key {key!r}", file=str(path), key="data"
            )
    return ConfigMap(
        name=name, namespace=str(meta.get("namespace", "")), data=dict(data), source=str(path)
    )
