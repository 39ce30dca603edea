"""Terraform (or OpenTofu) in one environment's working directory, the seed's way:

    init -backend-config=key=environments/<env>/terraform.tfstate ...
    plan -out=tfplan        apply tfplan        destroy -auto-approve

No variable and no secret is ever passed on the command line: the files carry no input
variables, and credentials reach Terraform through the environment (AWS_PROFILE, ...)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed
from envplane.render.cloud.write import write_text
from envplane.targets.cloud.tfevents import Events
from envplane.targets.cloud.tools import find_terraform, run, streaming

PLAN_FILE = "tfplan"
TIMEOUT_ENV = "ENVPLANE_TF_TIMEOUT"  # seconds for one terraform command; EKS takes ~15 min
RESUME_HINT = (
    "Terraform keeps what it created in its state: fix the cause, then `envplane resume` "
    "the operation; the next plan holds only what is left"
)


class Terraform:
    def __init__(self, workdir: Path, progress: Callable[[str], None]) -> None:
        self.binary = find_terraform()
        self.name = Path(self.binary).name
        self.workdir = workdir
        self.progress = progress
        self.timeout = float(os.environ.get(TIMEOUT_ENV) or 7200)
        self.env = {
            **os.environ,
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }

    @property
    def initialised(self) -> bool:
        return (self.workdir / ".terraform").is_dir()

    def write(self, files: Mapping[str, str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, text in files.items():
            if "/" in name or not name.endswith(".tf.json"):
                raise OperationFailed(f"refusing to write Terraform file {name!r}")
            write_text(self.workdir / name, text, mode=0o600)
        for old in self.workdir.glob("*.tf.json"):
            if old.name not in files:
                old.unlink()

    def init(self, backend: Mapping[str, Any]) -> None:
        argv = [self.binary, "init", "-input=false", "-no-color"]
        argv += [
            f"-backend-config={key}={backend[key]}"
            for key in ("key", "bucket", "region", "dynamodb_table")
        ]
        self.progress(f"{self.name} init (state {backend['key']} in s3://{backend['bucket']})")
        result = run(argv, cwd=self.workdir, env=self.env, timeout=self.timeout)
        if result.returncode != 0:
            raise OperationFailed(
                f"{self.name} init failed in {self.workdir}:\n{result.tail()}",
                hint=(
                    f"check AWS credentials and that the state bucket {backend['bucket']!r} and "
                    f"lock table {backend['dynamodb_table']!r} exist (ENVPLANE_TF_STATE_BUCKET, "
                    "ENVPLANE_TF_LOCK_TABLE)"
                ),
            )

    def _stream(self, argv: Sequence[str], what: str) -> Events:
        events = Events()
        with streaming(argv, cwd=self.workdir, env=self.env) as (lines, finish):
            for line in lines:
                events.feed(line, self.progress)
            result = finish()
        if result.returncode != 0:
            reason = events.error_text() or result.tail()
            if what == "apply" and events.completed:
                reason = f"{len(events.completed)} change(s) were made before it stopped: {reason}"
            raise OperationFailed(
                f"{self.name} {what} failed: {reason}",
                hint=RESUME_HINT if what in ("apply", "destroy") else None,
            )
        return events

    def plan(self, *replace: str) -> Events:
        """`-replace=ADDRESS` for each of `replace`: rebuilt even if unchanged (a restore)."""
        argv = [self.binary, "plan", "-input=false", f"-out={PLAN_FILE}", "-json"]
        argv += [f"-replace={address}" for address in replace]
        return self._stream(argv, "plan")

    def apply_plan(self) -> Events:
        try:
            return self._stream([self.binary, "apply", "-input=false", "-json", PLAN_FILE], "apply")
        finally:
            # A saved plan is good once: after an apply (whole or partial) it is stale.
            (self.workdir / PLAN_FILE).unlink(missing_ok=True)

    def destroy(self) -> Events:
        argv = [self.binary, "destroy", "-auto-approve", "-input=false", "-json"]
        return self._stream(argv, "destroy")

    def outputs(self) -> dict[str, Any]:
        result = run([self.binary, "output", "-json"], cwd=self.workdir, env=self.env, timeout=300)
        if result.returncode != 0:
            raise OperationFailed(f"{self.name} output failed: {result.tail()}")
        try:
            data = json.loads(result.stdout or "{}")
        except ValueError:
            raise OperationFailed(f"{self.name} output -json printed no JSON") from None
        return {str(k): v.get("value") for k, v in data.items() if isinstance(v, dict)}

    def state_list(self) -> list[str]:
        result = run([self.binary, "state", "list"], cwd=self.workdir, env=self.env, timeout=300)
        if result.returncode != 0:
            if "No state file was found" in result.stderr + result.stdout:
                return []
            raise OperationFailed(f"{self.name} state list failed: {result.tail()}")
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]
