"""The AWS provider's stand-in for the *real* terraform (the `realtools` tests): no AWS (nor
random) provider can be installed here, so a rendered configuration cannot be planned as it is.
This module rewrites it into one the real terraform plans and applies with no provider at all:

* every `aws_*` and `random_*` resource `TYPE.NAME` becomes `terraform_data.TYPE__NAME` (its
  `count`, `depends_on` and `lifecycle.create_before_destroy` kept), whose `input` is the
  resource's own arguments plus the computed attributes the configuration reads from it
  (`id`, `arn`, `endpoint`, `certificate_authority`, `address`, `master_user_secret`,
  `primary_endpoint_address`, `result`, ...);
* every `aws_*` data source `data.TYPE.NAME` becomes `terraform_data.data__TYPE__NAME` the same
  way (`partition`, `names`, ...);
* every reference `TYPE.NAME[i].ATTR` (in `${...}` and in `depends_on`) becomes
  `terraform_data.TYPE__NAME[i].output.ATTR`; outputs are rewritten with them;
* the `aws` and `random` entries of `provider` and `terraform.required_providers` are
  dropped, and a resource's `provider` argument with them.

Everything else (the `terraform` block with its S3 backend, `output`, `locals`, `variable`)
stays. The computed values are plausible stand-ins unless the test names them in a JSON file
($ENVPLANE_TFPROVIDER_VALUES: {"aws_eks_cluster.sunday-staging": {"endpoint": ...}, ...}), which
is how the outputs carry the real API server's endpoint and the ARNs of secrets in moto.

`tests/fakes/tfprovider/terraform` applies it to the *.tf.json of the working directory
before it execs the real terraform (the originals kept in `.tfprovider/original/`)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MARK_KEY = "//"  # Terraform JSON ignores a "//" property: the mark of a rewritten file
MARK = "rewritten by tests/fakes/tfprovider: aws_*/random_* replaced by terraform_data"
REPLACED = ("aws_", "random_")
DROPPED_PROVIDERS = ("aws", "random")
ACCOUNT = "123456789012"
REGION = "us-east-1"
KEPT_META = ("count", "for_each")

# TYPE.NAME[index].ATTR, TYPE.NAME.ATTR, data.TYPE.NAME.ATTR, or a bare TYPE.NAME (depends_on)
REF_RE = re.compile(
    r"(?<![\w.\-])(?P<data>data\.)?(?P<type>(?:aws|random)_[a-z0-9_]+)\.(?P<name>[A-Za-z_][\w\-]*)"
    r"(?P<index>\[[^\]]*\])?(?P<attr>\.[A-Za-z_]\w*)?"
)
INTERP_RE = re.compile(r"\$\{([^{}]*)\}")


def new_name(kind: str, name: str, data: bool = False) -> str:
    return f"data__{kind}__{name}" if data else f"{kind}__{name}"


def _ref(match: re.Match[str]) -> str:
    data = bool(match.group("data"))
    target = "terraform_data." + new_name(match.group("type"), match.group("name"), data)
    index, attr = match.group("index") or "", match.group("attr") or ""
    return f"{target}{index}.output{attr}" if attr else f"{target}{index}"


def rewrite_expr(text: str) -> str:
    """References to replaced resources inside every `${...}` of TEXT."""
    return INTERP_RE.sub(lambda m: "${" + REF_RE.sub(_ref, m.group(1)) + "}", text)


def rewrite_refs(value: Any) -> Any:
    if isinstance(value, str):
        return rewrite_expr(value)
    if isinstance(value, list):
        return [rewrite_refs(v) for v in value]
    if isinstance(value, dict):
        return {k: rewrite_refs(v) for k, v in value.items()}
    return value


def _reads(value: Any, found: dict[str, set[str]]) -> None:
    """Record every `ADDRESS -> first attribute` the configuration reads."""
    if isinstance(value, str):
        for interp in INTERP_RE.findall(value):
            for m in REF_RE.finditer(interp):
                if m.group("attr"):
                    address = ("data." if m.group("data") else "") + f"{m['type']}.{m['name']}"
                    found.setdefault(address, set()).add(m.group("attr")[1:])
    elif isinstance(value, list):
        for v in value:
            _reads(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            _reads(v, found)


def _service(kind: str) -> str:
    part = kind.removeprefix("aws_").split("_")[0]
    return {
        "db": "rds",
        "vpc": "ec2",
        "subnet": "ec2",
        "eip": "ec2",
        "route": "ec2",
        "nat": "ec2",
        "internet": "ec2",
        "security": "ec2",
        "secretsmanager": "secretsmanager",
        "elasticache": "elasticache",
    }.get(part, part)


def _suffix(body: Mapping[str, Any]) -> str:
    return "-${count.index}" if "count" in body else ""


def computed(kind: str, name: str, attr: str, body: Mapping[str, Any]) -> Any:
    """A plausible value of a computed attribute the provider would have set."""
    sfx = _suffix(body)
    ident = f"{kind.removeprefix('aws_').replace('_', '-')}-{name}{sfx}"
    arn = f"arn:aws:{_service(kind)}:{REGION}:{ACCOUNT}:{kind.removeprefix('aws_')}/{name}{sfx}"
    digest = hashlib.sha256(f"{kind}.{name}".encode()).hexdigest()
    if attr == "id":
        return str(body["name"]) if "name" in body and kind != "aws_iam_role" else ident
    if attr == "arn":
        return arn
    if attr == "name":
        return f"{body['name_prefix']}0001" if "name_prefix" in body else name
    if attr == "key_id":
        return digest[:8] + "-" + digest[8:12] + "-" + digest[12:16] + "-" + digest[16:28]
    if attr == "result":  # random_password
        return digest[: int(body.get("length", 32))]
    if attr == "hex":  # random_id
        return digest[: 2 * int(body.get("byte_length", 4))]
    if attr == "endpoint":
        return f"https://{digest[:32].upper()}.gr7.{REGION}.eks.amazonaws.com"
    if attr == "certificate_authority":
        return [{"data": base64.b64encode(b"stand-in CA").decode()}]
    if attr == "address":
        return f"{body.get('identifier', name)}.c9akciq32.{REGION}.rds.amazonaws.com"
    if attr == "master_user_secret":
        secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-{digest[:8]}"
        return [{"secret_arn": secret, "secret_status": "active", "kms_key_id": ""}]
    if attr == "primary_endpoint_address":
        group = body.get("replication_group_id", name)
        return f"master.{group}.{digest[:6]}.use1.cache.amazonaws.com"
    if attr == "partition":
        return "aws"
    if attr == "names":  # aws_availability_zones
        return [f"{REGION}{z}" for z in "abcdef"]
    return f"{kind}.{name}.{attr}"


def _replace(
    kind: str,
    name: str,
    body: Mapping[str, Any],
    reads: set[str],
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """The terraform_data block standing in for resource (or data source) KIND.NAME."""
    out: dict[str, Any] = {k: body[k] for k in KEPT_META if k in body}
    if "depends_on" in body:
        out["depends_on"] = [REF_RE.sub(_ref, str(d)) for d in body["depends_on"]]
    lifecycle = dict(body.get("lifecycle") or {})
    lifecycle.pop("ignore_changes", None)  # the provider's attributes: none on terraform_data
    lifecycle.pop("prevent_destroy", None)
    if lifecycle:
        out["lifecycle"] = lifecycle
    skip = {*KEPT_META, "depends_on", "lifecycle", "provider", "provisioner", "connection"}
    data: dict[str, Any] = {k: v for k, v in body.items() if k not in skip}
    for attr in sorted(reads):
        if attr not in data:
            data[attr] = computed(kind, name, attr, body)
    data.update(values)
    out["input"] = rewrite_refs(data)
    return out


def rewrite(
    doc: Mapping[str, Any], reads: Mapping[str, set[str]], values: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """DOC (one *.tf.json) with the AWS and random providers' parts stood in for."""
    out = copy.deepcopy(dict(doc))
    stand_ins: dict[str, Any] = {}
    resources = out.pop("resource", None) or {}
    kept: dict[str, Any] = {}
    for kind, blocks in resources.items():
        if not kind.startswith(REPLACED):
            kept[kind] = rewrite_refs(blocks)
            continue
        for name, body in blocks.items():
            address = f"{kind}.{name}"
            stand_ins[new_name(kind, name)] = _replace(
                kind, name, body, reads.get(address, set()), values.get(address, {})
            )
    datas = out.pop("data", None) or {}
    kept_data: dict[str, Any] = {}
    for kind, blocks in datas.items():
        if not kind.startswith(REPLACED):
            kept_data[kind] = rewrite_refs(blocks)
            continue
        for name, body in blocks.items():
            address = f"data.{kind}.{name}"
            stand_ins[new_name(kind, name, data=True)] = _replace(
                kind, name, body, reads.get(address, set()), values.get(address, {})
            )
    if stand_ins:
        kept.setdefault("terraform_data", {}).update(stand_ins)
    if kept:
        out["resource"] = kept
    if kept_data:
        out["data"] = kept_data
    providers = {
        k: v for k, v in (out.pop("provider", None) or {}).items() if k not in DROPPED_PROVIDERS
    }
    if providers:
        out["provider"] = providers
    for block in _terraform_blocks(out):
        required = block.get("required_providers")
        if isinstance(required, dict):
            for dropped in DROPPED_PROVIDERS:
                required.pop(dropped, None)
            if not required:
                del block["required_providers"]
    for key in ("output", "locals", "module", "check"):
        if key in out:
            out[key] = rewrite_refs(out[key])
    out[MARK_KEY] = MARK
    return out


def _terraform_blocks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    block = doc.get("terraform")
    if isinstance(block, dict):
        return [block]
    if isinstance(block, list):
        return [b for b in block if isinstance(b, dict)]
    return []


def rewrite_dir(workdir: Path, values: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Rewrite every not yet rewritten *.tf.json in WORKDIR, each original copied first to
    WORKDIR/.tfprovider/original/. Returns the names rewritten."""
    docs: dict[Path, dict[str, Any]] = {}
    for path in sorted(workdir.glob("*.tf.json")):
        docs[path] = json.loads(path.read_text())
    fresh = {p: d for p, d in docs.items() if d.get(MARK_KEY) != MARK}
    if not fresh:
        return []
    originals = workdir / ".tfprovider" / "original"
    reads: dict[str, set[str]] = {}
    for path, doc in docs.items():
        kept = originals / path.name
        if path in fresh:
            _reads(doc, reads)
        elif kept.exists():  # read what the original read: references are rewritten here
            _reads(json.loads(kept.read_text()), reads)
    originals.mkdir(parents=True, exist_ok=True)
    for path, doc in fresh.items():
        (originals / path.name).write_text(path.read_text())
        path.write_text(json.dumps(rewrite(doc, reads, values), indent=2, sort_keys=True) + "\n")
    for stale in originals.glob("*.tf.json"):
        if stale.name not in {p.name for p in docs}:
            stale.unlink()
    return [p.name for p in fresh]


def load_values(path: str | None) -> dict[str, dict[str, Any]]:
    if not path:
        return {}
    data = json.loads(Path(path).read_text())
    return {str(k): dict(v) for k, v in data.items()}
