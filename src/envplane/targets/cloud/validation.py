"""Validation of an environment on the cloud target (`CloudValidator`): the seed's five areas and
a smoke test against what runs, each check naming what it looked at and, when it fails, what
to do. The AWS checks (infrastructure; KMS, encryption and Secrets Manager under security) are
in validation_aws.py; the Kubernetes ones here, through KubeClient:

applications  every Deployment ready == desired (the seed's check); every pod Running and
              Ready, those that are not named with the kubelet's reason
networking    every Service has a ready endpoint; the NetworkPolicies present when rendered
              (network_policies on); the public load balancer has an address
monitoring    the kube-prometheus-stack release deployed (helm status); Prometheus answering
              /-/ready through the API server's service proxy
security      (besides the AWS half) the app Secret present, and no ConfigMap holding a
              secret's value or a plain value under a secret-named key
smoke         GET /api/health through the public Service (the API server's service proxy)

The same calls reach AWS, a real cluster or the test stand-ins (moto, the fake API)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from envplane.matrix.models import secret_looking
from envplane.render.cloud.names import MONITORING_NAMESPACE
from envplane.targets.checks import Check, Status, Subject
from envplane.targets.cloud import apps, aws, monitoring, validation_aws
from envplane.targets.cloud.delivery import PROMETHEUS_PORT, prometheus_service
from envplane.targets.cloud.kube import SKIP_CONFIG_MAPS
from envplane.targets.cloud.validation_aws import CloudFacts, probe, skip

MIN_SEARCHED = 8  # shorter secret values are not searched for (as on the local target)
SHOWN = 5  # names listed in one failure before "and N more"


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def _no_workloads(env: CloudFacts, area: str) -> list[Check] | None:
    if env.kube_spec is None:
        return [skip(area, "kubernetes", "no Kubernetes workloads recorded (no cluster)")]
    return None


# --- applications --------------------------------------------------------------------------


def applications(env: CloudFacts) -> list[Check]:
    none = _no_workloads(env, "applications")
    if none is not None:
        return none
    spec = env.kube_spec or {}
    checks = [
        probe("applications", f"deployment {name}", partial(_deployment, env, str(name)))
        for name in spec.get("deployments", [])
    ]
    checks.append(probe("applications", "pods running and ready", partial(_pods, env)))
    return checks


def _deployment(env: CloudFacts, name: str) -> tuple[Status, str]:
    dep = env.kube().get("Deployment", name, env.ns)
    if dep is None:
        return "fail", f"Deployment {name} not found in {env.ns}; `envplane update` applies it"
    desired = int(dep.get("spec", {}).get("replicas", 1))
    ready = int(dep.get("status", {}).get("readyReplicas", 0))
    if ready != desired:
        return "fail", (
            f"Deployment {name}: {ready}/{desired} ready; look at its pods: "
            f"kubectl -n {env.ns} describe deploy/{name}"
        )
    return "pass", f"Deployment {name}: {ready}/{desired} ready"


def pod_problem(pod: dict[str, Any]) -> str | None:
    """Why a pod is not Running and Ready (None when it is), as the kubelet says it."""
    status = pod.get("status") or {}
    phase = str(status.get("phase", "Unknown"))
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    if phase == "Running" and ready:
        return None
    reasons = []
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        terminated = (state.get("terminated") or {}).get("reason")
        if waiting or terminated:
            restarts = int(c.get("restartCount", 0))
            reasons.append(
                f"{c.get('name')} {waiting or terminated}"
                + (f", {restarts} restarts" if restarts else "")
            )
    said = f": {'; '.join(reasons)}" if reasons else ""
    return f"{phase}{'' if phase != 'Running' else ', not Ready'}{said}"


def _pods(env: CloudFacts) -> tuple[Status, str]:
    pods = env.kube().list_objects("Pod", env.ns)
    # A finished Job's pod is done, not unwell.
    live = [p for p in pods if (p.get("status") or {}).get("phase") != "Succeeded"]
    if not live:
        return "fail", f"no pods in {env.ns}; look at: kubectl -n {env.ns} get events"
    bad = []
    for pod in live:
        problem = pod_problem(pod)
        if problem is not None:
            bad.append(f"{pod['metadata']['name']} ({problem})")
    if bad:
        first = bad[0].split(" ", 1)[0]
        return "fail", (
            f"{len(bad)} of {len(live)} pod(s) not Running and Ready: {_listed(bad)}; "
            f"look at: kubectl -n {env.ns} describe pod {first}"
        )
    return "pass", f"{len(live)} pod(s) in {env.ns} Running and Ready"


# --- networking ----------------------------------------------------------------------------


def networking(env: CloudFacts) -> list[Check]:
    none = _no_workloads(env, "networking")
    if none is not None:
        return none
    checks = [
        probe(
            "networking",
            f"service {m['metadata']['name']} has endpoints",
            partial(_endpoints, env, m),
        )
        for m in env.manifests("Service")
    ]
    policies = [str(m["metadata"]["name"]) for m in env.manifests("NetworkPolicy")]
    if policies:
        checks.append(probe("networking", "network policies", partial(_policies, env, policies)))
    else:
        checks.append(
            skip("networking", "network policies", "network_policies is off for this environment")
        )
    if any((m.get("spec") or {}).get("type") == "LoadBalancer" for m in env.manifests("Service")):
        checks.append(probe("networking", "load balancer address", partial(_public, env)))
    return checks


def _endpoints(env: CloudFacts, service: dict[str, Any]) -> tuple[Status, str]:
    name = str(service["metadata"]["name"])
    found = env.kube().get("Endpoints", name, env.ns)
    subsets = (found or {}).get("subsets") or []
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    waiting = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if not ready:
        selector = ",".join(
            f"{k}={v}"
            for k, v in sorted(((service.get("spec") or {}).get("selector") or {}).items())
        )
        return "fail", (
            f"Service {name} has no ready endpoint ({waiting} not ready): none of the pods it "
            f"selects is Ready; look at: kubectl -n {env.ns} get pods -l {selector}"
        )
    return "pass", f"Service {name}: {ready} ready endpoint(s)"


def _policies(env: CloudFacts, wanted: list[str]) -> tuple[Status, str]:
    present = {o["metadata"]["name"] for o in env.kube().list_objects("NetworkPolicy", env.ns)}
    missing = sorted(set(wanted) - present)
    if missing:
        return "fail", (
            f"NetworkPolicies missing in {env.ns}: {_listed(missing)}; `envplane update` "
            "applies them"
        )
    return "pass", f"{len(wanted)} NetworkPolicies present in {env.ns}: {_listed(sorted(wanted))}"


def _public(env: CloudFacts) -> tuple[Status, str]:
    host = apps.public_address(env.ctx, env.kube_spec or {})
    if not host:
        return "fail", (
            "the public Service has no load balancer address yet; look at: "
            f"kubectl -n {env.ns} describe service (events of the AWS load balancer controller)"
        )
    return "pass", f"public load balancer at {host}"


# --- monitoring ----------------------------------------------------------------------------


def monitoring_checks(env: CloudFacts) -> list[Check]:
    if env.helm is None:
        return [skip("monitoring", "prometheus", "prometheus and grafana are off: no chart")]
    helm = env.helm
    checks = [probe("monitoring", f"helm release {helm['release']}", partial(_release, env))]
    if (helm.get("values") or {}).get("prometheus", {}).get("enabled"):
        checks.append(probe("monitoring", "prometheus ready", partial(_prometheus, env)))
    else:
        checks.append(skip("monitoring", "prometheus ready", "prometheus is off (grafana only)"))
    return checks


def _release(env: CloudFacts) -> tuple[Status, str]:
    seen = monitoring.observe(env.ctx, env.helm or {})
    if not (seen.exists and seen.healthy):
        return "fail", f"{seen.detail}; `envplane update` installs it (helm status shows why)"
    helm = env.helm or {}
    return "pass", f"{seen.detail} ({helm.get('chart')} {helm.get('version')})"


def _prometheus(env: CloudFacts) -> tuple[Status, str]:
    service = prometheus_service(str((env.helm or {}).get("release", "prometheus")))
    code, text = env.kube().proxy_get(MONITORING_NAMESPACE, service, PROMETHEUS_PORT, "/-/ready")
    where = f"GET /-/ready on {MONITORING_NAMESPACE}/{service}:{PROMETHEUS_PORT}"
    if code != 200:
        return "fail", (
            f"{where} -> {code} {text[:120].strip()}; look at: kubectl -n {MONITORING_NAMESPACE} "
            "get pods -l app.kubernetes.io/name=prometheus"
        )
    return "pass", f"{where} -> 200"


# --- security (the Kubernetes half) --------------------------------------------------------


def security(env: CloudFacts) -> list[Check]:
    checks = validation_aws.security(env)
    if env.kube_spec is not None:
        checks.append(probe("security", "app secret present", partial(_app_secret, env)))
        checks.append(probe("security", "no plaintext secret in a configmap", partial(_plain, env)))
    return checks


def _app_secret(env: CloudFacts) -> tuple[Status, str]:
    source = (env.kube_spec or {}).get("app_secret") or {}
    if not source.get("keys"):
        return "skip", "the services read no password"
    name = str(source["name"])
    found = env.kube().get("Secret", name, env.ns)
    if found is None:
        return "fail", f"Secret {name} not found in {env.ns}; `envplane update` makes it"
    missing = sorted(set(source["keys"]) - set(found.get("data") or {}))
    if missing:
        return "fail", f"Secret {name} lacks {', '.join(missing)}; `envplane update` fills it"
    return "pass", f"Secret {name} holds {', '.join(sorted(source['keys']))} from Secrets Manager"


def _secret_values(env: CloudFacts) -> dict[str, str]:
    """Name -> value of every secret the environment has: the passwords in Secrets Manager
    (as the app Secret reads them) and envplane's own (the store's)."""
    values: dict[str, str] = {}
    keys = ((env.kube_spec or {}).get("app_secret") or {}).get("keys") or {}
    outputs = env.outputs()
    for key, origin in sorted(keys.items()):
        arn = outputs.get(origin["output"])
        if arn:
            values[str(key)] = aws.secret_value(env.region, str(arn), origin.get("field"))
    for name in env.subject.secret_names():
        values[name] = env.ctx.secret(name)
    return values


def _plain(env: CloudFacts) -> tuple[Status, str]:
    values = {n: v for n, v in _secret_values(env).items() if len(v) >= MIN_SEARCHED}
    hits = []
    maps = [
        cm
        for cm in env.kube().list_objects("ConfigMap", env.ns)
        if cm["metadata"]["name"] not in SKIP_CONFIG_MAPS
    ]
    for cm in maps:
        cm_name = cm["metadata"]["name"]
        for key, text in sorted((cm.get("data") or {}).items()):
            for name, value in sorted(values.items()):
                if value in str(text):
                    hits.append(f"ConfigMap {cm_name} key {key} holds the value of {name}")
            if secret_looking(key) and str(text).strip():
                hits.append(f"ConfigMap {cm_name} key {key} names a secret and holds a value")
    if hits:
        return "fail", (
            f"{_listed(hits)}; a secret belongs in a Secret: write `{{secret: NAME}}` in the "
            "matrix, or read it from app-secrets"
        )
    return "pass", (
        f"{len(maps)} ConfigMap(s) in {env.ns} searched for {len(values)} secret value(s) and "
        "secret-named keys: none"
    )


# --- smoke ---------------------------------------------------------------------------------


def smoke(env: CloudFacts) -> list[Check]:
    public = [
        m for m in env.manifests("Service") if (m.get("spec") or {}).get("type") == "LoadBalancer"
    ]
    if not public or len(env.manifests("Deployment")) < 2:
        return [skip("smoke", "api round trip", "no public Service in front of an API")]
    return [probe("smoke", "api round trip", partial(_round_trip, env, public[0]))]


def _round_trip(env: CloudFacts, service: dict[str, Any]) -> tuple[Status, str]:
    name = str(service["metadata"]["name"])
    port = int(service["spec"]["ports"][0]["port"])
    code, text = env.kube().proxy_get(env.ns, name, port, "/api/health")
    where = f"GET /api/health through {name}:{port}"
    if code != 200:
        return "fail", f"{where} -> {code} {text[:120].strip()}; look at the backend's logs"
    return "pass", f"{where} -> 200"


BY_AREA: dict[str, Callable[[CloudFacts], list[Check]]] = {
    "infrastructure": validation_aws.infrastructure,
    "applications": applications,
    "networking": networking,
    "monitoring": monitoring_checks,
    "security": security,
    "smoke": smoke,
}


class CloudValidator:
    """The cloud target's `targets.checks.Validator`; one per validation run, so Terraform's
    outputs and the cluster connection are read once for all its areas."""

    def __init__(self) -> None:
        self._facts: CloudFacts | None = None

    def check(self, area: str, subject: Subject) -> list[Check]:
        if self._facts is None or self._facts.subject is not subject:
            self._facts = CloudFacts(subject)
        return BY_AREA[area](self._facts)
