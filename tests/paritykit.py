"""The second matrix of the parity and explain tests ("shop"), and golden-file checks.

Two environments in a pipeline (qa-east -> live-east) over templates three levels deep
(`base` <- `small` <- qa-east), with a scale difference (availability zones, replicas), declared
ones (top level and one environment's own), undeclared ones (an inherited `iam_roles` from
`templates.small`, a rendered ConfigMap key from a variable) and a value equal everywhere
except through `{{ENVIRONMENT_NAME}}` (not a difference). Its one service is a tiny stdlib
web server, so the environments can really be created for `parity --live`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import Project, open_tmpdir
from tests.support import teardown_project

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "parity"
UPDATE = os.environ.get("ENVPLANE_UPDATE_GOLDEN") == "1"

SHOP_MATRIX = """\
project: shop
templates:
  base:
    template: shop
    regions:
      primary: us-east-1
    networking:
      vpc_cidr: 10.0.0.0/16
      availability_zones: 3
      public_subnets: 2
      private_subnets: 2
      nat_gateways: 1
    security:
      kms_encryption: enabled
      secrets_manager: enabled
      iam_roles: strict
      network_policies: enabled
  small:
    extends: base
    networking:
      availability_zones: 2
    security:
      iam_roles: standard
environments:
  qa-east:
    extends: small
    networking:
      vpc_cidr: 10.1.0.0/16
      availability_zones: 1
    variables:
      FEATURE_X: "on"
    services:
      web:
        env:
          MODE: testing
  live-east:
    extends: base
    services:
      web:
        replicas: 2
    variables:
      FEATURE_X: "off"
    parity:
      allow:
        services.web.env.MODE: "qa-east runs the app in testing mode"
deployment_strategies:
  live-east:
    primary: rolling
  qa-east:
    primary: recreate
services:
  web:
    command: ["{python}", "app/tiny.py"]
    port: 3000
    version: "1.0.0"
    versions:
      "1.0.0": {}
      "1.1.0": {}
    env:
      MODE: normal
      DB_PASSWORD: {secret: db-password}
variables:
  FEATURE_X: "off"
parity:
  allow:
    variables.FEATURE_X: "qa tries the feature first"
    networking.vpc_cidr: "each environment its own address range, so they can be peered"
"""

SHOP_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: {{NAMESPACE}}
data:
  GREETING: "hello from {{ENVIRONMENT_NAME}}"
  FEATURE: "{{FEATURE_X}}"
  LOG_LEVEL: "info"
"""

TINY_APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def shop_project() -> Iterator[Project]:
    base = open_tmpdir("envplane-parity-")
    root = base / "shop"
    (root / "config").mkdir(parents=True)
    (root / "app").mkdir()
    (root / "templates" / "environments" / "shop").mkdir(parents=True)
    (root / "config" / "environment-matrix.yaml").write_text(SHOP_MATRIX)
    (root / "templates" / "environments" / "shop" / "config.yaml").write_text(SHOP_TEMPLATE)
    (root / "app" / "tiny.py").write_text(TINY_APP)
    proj = Project(root=root, home=base / "home")
    try:
        yield proj
    finally:
        teardown_project(proj)
        shutil.rmtree(base, ignore_errors=True)


def check_golden(name: str, text: str) -> None:
    """`text` equals tests/golden/parity/NAME (rewritten with ENVPLANE_UPDATE_GOLDEN=1)."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run `make golden`"
    assert text == path.read_text(), f"{name} differs from its golden file: run `make golden`"


def check_golden_json(name: str, data: object) -> None:
    check_golden(name, json.dumps(data, indent=2, sort_keys=True) + "\n")


def line_of(text: str, needle: str, after: str | None = None) -> int:
    """The 1-based line of the first line containing `needle` (after the one with `after`)."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(n for n, line in enumerate(lines) if after in line) + 1
    return next(n for n, line in enumerate(lines[start:], start) if needle in line) + 1
