"""Rendered files on disk: terraform/*.tf.json and terraform/backend.tfbackend, kubernetes/*.yaml,
helm/values-monitoring.yaml.

Deterministic text (sorted keys, multi-line strings as YAML literal blocks), each file written
aside and renamed into place; files of these kinds that the environment no longer has are
removed from those three folders, and nothing else is touched."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from envplane.render.model import DesiredEnvironment


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(value: Any) -> str:
    text: str = yaml.dump(
        value, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=100
    )
    return text


# The settings envplane passes to `terraform init` as -backend-config=KEY=VALUE, in that order.
BACKEND_KEYS = ("key", "bucket", "region", "dynamodb_table")
BACKEND_FILE = "backend.tfbackend"


def backend_file(backend: dict[str, Any]) -> str:
    """The environment's S3 backend settings as a Terraform backend configuration file, so that
    `terraform init -backend-config=backend.tfbackend` in the rendered directory uses the same
    state key, bucket, region and lock table as envplane's own init."""
    lines = [f"{key} = {_hcl_string(str(backend[key]))}" for key in BACKEND_KEYS]
    return "# terraform init -backend-config=backend.tfbackend\n" + "\n".join(lines) + "\n"


def _hcl_string(value: str) -> str:
    # Names are validated (bucket, table, region, environment), but escape anyway: a quote or
    # a template sequence would change what init reads.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${")
    return f'"{escaped}"'


def manifest_filename(index: int, manifest: dict[str, Any]) -> str:
    kind = str(manifest["kind"]).lower()
    return f"{index:02d}-{kind}-{manifest['metadata']['name']}.yaml"


def rendered_files(desired: DesiredEnvironment) -> dict[str, str]:
    """Relative path -> text, for every file the environment renders to."""
    files: dict[str, str] = {}
    for res in desired.resources:
        if res.kind == "terraform":
            files.update({f"terraform/{n}": t for n, t in sorted(res.spec["files"].items())})
            if res.spec.get("backend"):
                files[f"terraform/{BACKEND_FILE}"] = backend_file(dict(res.spec["backend"]))
        elif res.kind == "kubernetes":
            for i, manifest in enumerate(res.spec["manifests"]):
                files[f"kubernetes/{manifest_filename(i, manifest)}"] = dump_yaml(manifest)
        elif res.kind == "helm":
            files["helm/values-monitoring.yaml"] = dump_yaml(res.spec["values"])
    return files


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_rendered(desired: DesiredEnvironment, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    files = rendered_files(desired)
    written: list[Path] = []
    for rel, text in files.items():
        path = out_dir / rel
        write_text(path, text)
        written.append(path)
    stale = [
        *(out_dir / "terraform").glob("*.tf.json"),
        *(out_dir / "terraform").glob(BACKEND_FILE),
        *(out_dir / "kubernetes").glob("*.yaml"),
        *(out_dir / "helm").glob("values-monitoring.yaml"),
    ]
    for path in stale:
        if path not in written:
            path.unlink()
    return written
