"""Config templates: sandboxed Jinja2, undefined placeholders are errors, output is ConfigMaps.

A template directory `templates/environments/<name>/` holds YAML files of Kubernetes ConfigMaps
whose text has placeholders in the seed's `{{ENVIRONMENT_NAME}}` style. Rendering is text-level
(so placeholders may sit anywhere, as in the seed) and then parsed, so the result is data.

Values are data (`render.values`): the text is parsed with a token in place of each
placeholder, so the keys, ConfigMaps and documents are the template's alone, and each value
then fills the strings holding its token (JSON-escaped inside embedded JSON). The sandbox, its
bounds and its errors (always a `MatrixError` at the template's file and line) are
`render.sandbox`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envplane.errors import MatrixError
from envplane.names import check_ident
from envplane.render import sandbox
from envplane.render.values import Filler, describe_tokens


@dataclass(frozen=True)
class ConfigMap:
    name: str
    namespace: str
    data: Mapping[str, str]
    source: str  # the template file it came from


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


def render_text(text: str, variables: Mapping[str, Any], *, filename: str) -> str:
    """Plain text (not YAML) rendered in the sandbox: values are pasted as they are."""
    return sandbox.render_source(text, variables, filename=filename)


def render_config_maps(files: list[Path], variables: Mapping[str, Any]) -> list[ConfigMap]:
    maps: list[ConfigMap] = []
    seen: dict[str, str] = {}
    for path in files:
        rendered = sandbox.render_file(path, variables)
        try:
            docs = [d for d in yaml.safe_load_all(rendered.text) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = describe_tokens(str(getattr(exc, "problem", exc)), rendered)
            raise MatrixError(
                f"rendered template is not valid YAML: {problem}",
                file=str(path),
                line=mark.line + 1 if mark else None,
            ) from None
        except RecursionError:
            raise MatrixError("rendered template nests too deeply", file=str(path)) from None
        filler = Filler(rendered, str(path))
        for index, doc in enumerate(docs):
            filler.fixed(doc)
            try:
                filled = filler.fill(doc)
            except RecursionError:
                raise MatrixError("rendered template nests too deeply", file=str(path)) from None
            maps.append(_config_map(filled, path, index, seen))
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
