"""kube-prometheus-stack values from the environment's monitoring block.

prometheus enabled -> Prometheus with 15 days of retention and Alertmanager; basic -> 3 days,
no Alertmanager; disabled -> none. grafana enabled/basic -> Grafana with its admin password
in a Secret the driver creates (never the chart's default password). Prometheus scrapes the
environment's pods that carry prometheus.io/* annotations (the services' metrics_path)."""

from __future__ import annotations

from typing import Any

from envplane.matrix import Monitoring
from envplane.render.cloud.names import labels
from envplane.render.variables import is_on

RETENTION = {"enabled": "15d", "basic": "3d"}
GRAFANA_SECRET = "grafana-admin"  # noqa: S105 - a Secret's name
GRAFANA_PASSWORD = "grafana-admin-password"  # noqa: S105 - a state-store secret's name


def _scrape_job(ns: str, env: str) -> dict[str, Any]:
    meta = "__meta_kubernetes_pod_"
    return {
        "job_name": f"{ns}-pods",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [ns]}}],
        "relabel_configs": [
            {
                "source_labels": [f"{meta}annotation_prometheus_io_scrape"],
                "action": "keep",
                "regex": "true",
            },
            {
                "source_labels": [f"{meta}annotation_prometheus_io_path"],
                "action": "replace",
                "regex": "(.+)",
                "target_label": "__metrics_path__",
            },
            {
                "source_labels": ["__address__", f"{meta}annotation_prometheus_io_port"],
                "action": "replace",
                "regex": "([^:]+)(?::\\d+)?;(\\d+)",
                "replacement": "${1}:${2}",
                "target_label": "__address__",
            },
            {
                "source_labels": [f"{meta}label_app_kubernetes_io_name"],
                "target_label": "service",
            },
            {"target_label": "environment", "replacement": env},
        ],
    }


def grafana_on(monitoring: Monitoring | None) -> bool:
    return monitoring is not None and is_on(monitoring.grafana)


def monitoring_values(
    monitoring: Monitoring | None, *, project: str, env: str, ns: str
) -> dict[str, Any] | None:
    """The chart's values, or None when neither Prometheus nor Grafana is wanted."""
    if monitoring is None:
        return None
    prometheus = is_on(monitoring.prometheus)
    grafana = grafana_on(monitoring)
    if not (prometheus or grafana):
        return None
    values: dict[str, Any] = {
        "commonLabels": labels(project, env),
        "alertmanager": {"enabled": monitoring.prometheus == "enabled"},
        "kubeStateMetrics": {"enabled": prometheus},
        "nodeExporter": {"enabled": prometheus},
        "prometheus": {"enabled": prometheus},
        "grafana": {"enabled": grafana},
    }
    if prometheus:
        values["prometheus"]["prometheusSpec"] = {
            "retention": RETENTION[monitoring.prometheus],
            "scrapeInterval": "30s",
            "additionalScrapeConfigs": [_scrape_job(ns, env)],
        }
    if grafana:
        values["grafana"]["admin"] = {
            "existingSecret": GRAFANA_SECRET,
            "userKey": "admin-user",
            "passwordKey": "admin-password",
        }
    return values
