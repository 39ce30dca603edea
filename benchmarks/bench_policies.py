"""What policies cost: loading a matrix with its rules checked, evaluating every rule on every
environment, and the `check` a user runs — over generated environments.

Prints, for 200 and 1,000 production-like environments (each extending one template, with a
label, and three rules of the matrix's own beside envplane's nine defaults): the load time with
and without the `policies:` block, the evaluation of every rule in force on every environment
(in-process, best of ROUNDS), and the ratio of evaluation to load — evaluation runs before every
create, update, deploy and promote, so it must stay small beside the load those already pay.
Usage: python benchmarks/bench_policies.py [ROUNDS]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial

import benchkit

from envplane.matrix import load_matrix_text, policies

BASE = """\
project: bench
templates:
  prod:
    labels: {tier: production}
    regions: {primary: us-east-1, secondary: us-west-2}
    databases:
      primary: {engine: postgresql, version: "14.9", instance_class: db.r5.large,
                multi_az: true, backup_retention: 14}
    networking: {vpc_cidr: 10.0.0.0/16, availability_zones: 3, public_subnets: 3,
                 private_subnets: 3, nat_gateways: 3}
    monitoring: {prometheus: enabled, grafana: enabled, jaeger: enabled, elk_stack: enabled}
    security: {kms_encryption: enabled, secrets_manager: enabled, iam_roles: strict,
               network_policies: enabled}
    services:
      backend: {replicas: 2}
      worker: {replicas: 3}
services:
  backend: {command: ["{python}", "app.py"]}
  worker: {command: ["{python}", "worker.py"]}
"""

RULES = """\
policies:
  rules:
    - {id: replicas, key: services.*.replicas, op: ge, value: 2,
       applies_to: {labels: {tier: production}}}
    - {id: db-version, key: databases.primary.version, op: in, value: ["14.9", "15.4"]}
    - {id: no-elk-off, key: monitoring.elk_stack, op: ne, value: disabled,
       applies_to: {approval_required: true}}
"""


def matrix_text(n: int, rules: bool) -> str:
    envs = "".join(f"  env-{i:04d}:\n    extends: prod\n" for i in range(n))
    strategies = "".join(
        f"  env-{i:04d}: {{primary: rolling, approval_required: true}}\n" for i in range(n)
    )
    text = f"{BASE}environments:\n{envs}deployment_strategies:\n{strategies}"
    return text + (RULES if rules else "")


def best(rounds: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    benchkit.compile_envplane()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"policies benchmark, best of {rounds} rounds")
    for n in (200, 1000):
        plain, ruled = matrix_text(n, rules=False), matrix_text(n, rules=True)
        load_plain = best(rounds, partial(load_matrix_text, plain, "bench.yaml"))
        load_ruled = best(rounds, partial(load_matrix_text, ruled, "bench.yaml"))
        matrix = load_matrix_text(ruled, "bench.yaml")
        found = policies.evaluate(matrix)
        assert not found, found[0].text()
        rules = len(policies.in_force(matrix))
        evaluate = best(rounds, partial(policies.evaluate, matrix))
        one = best(rounds, partial(policies.evaluate, matrix, ["env-0000"]))
        print(
            f"{n:5d} environments, {rules} rules: load {load_plain * 1000:7.1f} ms, "
            f"with policies: {load_ruled * 1000:7.1f} ms ({load_ruled / load_plain:.2f}x); "
            f"evaluate all {evaluate * 1000:6.1f} ms ({evaluate / load_ruled:.2f}x the load), "
            f"one environment (create's check) {one * 1000:.2f} ms"
        )


if __name__ == "__main__":
    main()
