"""Terraform JSON syntax built as data: one TfFile per `*.tf.json`, addresses derived from it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PARTITION = "${data.aws_partition.current.partition}"


def ref(expression: str) -> str:
    """A Terraform expression inside a JSON string: `${aws_vpc.main.id}`."""
    return "${" + expression + "}"


def policy(statements: list[dict[str, Any]]) -> str:
    """An IAM policy document as the JSON text AWS wants (references inside are interpolated)."""
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def assume_role(service: str) -> str:
    return policy(
        [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    )


def managed_policy(name: str) -> str:
    return f"arn:{PARTITION}:iam::aws:policy/{name}"


@dataclass
class TfFile:
    name: str  # e.g. "network" -> network.tf.json
    doc: dict[str, Any] = field(default_factory=dict)

    def resource(self, kind: str, label: str, body: dict[str, Any]) -> str:
        self.doc.setdefault("resource", {}).setdefault(kind, {})[label] = body
        return f"{kind}.{label}"

    def data(self, kind: str, label: str, body: dict[str, Any]) -> str:
        self.doc.setdefault("data", {}).setdefault(kind, {})[label] = body
        return f"data.{kind}.{label}"

    def output(self, label: str, value: str, description: str, sensitive: bool = False) -> None:
        body: dict[str, Any] = {"value": value, "description": description}
        if sensitive:
            body["sensitive"] = True
        self.doc.setdefault("output", {})[label] = body

    @property
    def filename(self) -> str:
        return f"{self.name}.tf.json"

    def text(self) -> str:
        return json.dumps(self.doc, indent=2, sort_keys=True) + "\n"

    def addresses(self) -> list[str]:
        """Managed resource instances Terraform will create: `aws_subnet.public[0]`, ..."""
        out: list[str] = []
        for kind, blocks in self.doc.get("resource", {}).items():
            for label, body in blocks.items():
                count = body.get("count")
                address = f"{kind}.{label}"
                if isinstance(count, int):
                    out.extend(f"{address}[{i}]" for i in range(count))
                else:
                    out.append(address)
        return out
