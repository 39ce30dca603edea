"""The Helm chart repository the cloud target names (https://prometheus-community.github.io/
helm-charts), served on 127.0.0.1 for the *real* helm: the one thing real helm cannot do here is
download kube-prometheus-stack (no network), so the chart itself is a small stand-in of the
same name and version, packaged and indexed by the real `helm package` / `helm repo index`.

How helm reaches it without a flag: HTTPS_PROXY names a local proxy that answers CONNECT to
prometheus-community.github.io:443 itself (any other host is refused), with a certificate for
that host signed by a throwaway CA that SSL_CERT_FILE makes helm trust (Go reads it on Linux);
NO_PROXY keeps the API server and moto on 127.0.0.1 direct. `helm repo add`, `repo update` and
`upgrade --install` (chart download included) are then helm's own, unchanged.

The stand-in chart renders, into the release's namespace: a ConfigMap holding the values it was
given (so a test sees what envplane passed), a Deployment (helm's --wait waits for it: the node
stand-in marks its pod ready) and the Prometheus Service named as kube-prometheus-stack names
it (`<release>-kube-prometheus-stack-prometheus`, cut at 26 characters, + `-prometheus`)."""

from __future__ import annotations

import datetime as dt
import select
import socket
import ssl
import subprocess
import textwrap
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HOST = "prometheus-community.github.io"
PREFIX = "/helm-charts"
CHART = "kube-prometheus-stack"

CHART_FILES: dict[str, str] = {
    "Chart.yaml": """\
        apiVersion: v2
        name: kube-prometheus-stack
        version: {version}
        appVersion: "stand-in"
        description: a stand-in of kube-prometheus-stack for the realtools tests
        """,
    "values.yaml": """\
        grafana:
          enabled: true
        prometheus:
          enabled: true
        """,
    "templates/_names.tpl": """\
        {{- define "kps.fullname" -}}
        {{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 26 | trimSuffix "-" }}
        {{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 26 | trimSuffix "-" }}
        {{- end -}}
        {{- end -}}
        """,
    "templates/values.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ include "kps.fullname" . }}-values
          labels: {{- toYaml .Values.commonLabels | nindent 4 }}
        data:
          values.json: {{ toJson .Values | quote }}
        """,
    "templates/prometheus.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ include "kps.fullname" . }}-prometheus
          labels: {{- toYaml .Values.commonLabels | nindent 4 }}
        spec:
          replicas: 1
          selector:
            matchLabels: {app: {{ include "kps.fullname" . }}-prometheus}
          template:
            metadata:
              labels: {app: {{ include "kps.fullname" . }}-prometheus}
            spec:
              containers:
                - name: prometheus
                  image: quay.io/prometheus/prometheus:v3.1.0
                  ports: [{containerPort: 9090}]
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: {{ include "kps.fullname" . }}-prometheus
          labels: {{- toYaml .Values.commonLabels | nindent 4 }}
        spec:
          selector: {app: {{ include "kps.fullname" . }}-prometheus}
          ports: [{name: http-web, port: 9090, targetPort: 9090}]
        """,
}


def _ca_and_leaf(workdir: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA (its PEM: what SSL_CERT_FILE names) and a leaf for HOST it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "envplane test chart repo CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = workdir / "ca.pem", workdir / "leaf.pem", workdir / "leaf.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem


def build_repo(helm: str, workdir: Path, version: str, env: Mapping[str, str]) -> Path:
    """The stand-in chart packaged and indexed by the real helm: WORKDIR/repo/{index.yaml,tgz}."""
    chart = workdir / "chart" / CHART
    for name, text in CHART_FILES.items():
        path = chart / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).replace("{version}", version))
    repo = workdir / "repo"
    repo.mkdir()
    run = {"check": True, "capture_output": True, "env": dict(env), "timeout": 120}
    subprocess.run([helm, "package", str(chart), "-d", str(repo)], **run)  # type: ignore[call-overload]
    url = f"https://{HOST}{PREFIX}"
    subprocess.run([helm, "repo", "index", str(repo), "--url", url], **run)  # type: ignore[call-overload]
    return repo


@dataclass
class ChartRepo:
    """The proxy serving HOST's chart repository from `repo`; `requests` lists what was asked."""

    repo: Path
    ca_file: Path
    proxy_url: str = ""
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _server: socket.socket | None = None
    _context: ssl.SSLContext | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def env(self) -> dict[str, str]:
        """What helm needs in its environment to reach this repository."""
        no_proxy = "127.0.0.1,localhost,::1"
        return {
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
            "SSL_CERT_FILE": str(self.ca_file),
        }

    def _serve_tls(self, conn: socket.socket) -> None:
        assert self._context is not None
        with self._context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(30)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = tls.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                method, path = [*line.split(" "), "", ""][:2]
                self.requests.append(f"{method} {path}")
                name = path.split("?", 1)[0].removeprefix(PREFIX + "/")
                target = self.repo / name
                if (
                    method == "GET"
                    and path.startswith(PREFIX + "/")
                    and "/" not in name
                    and target.is_file()
                ):
                    body = target.read_bytes()
                    kind = "text/yaml" if name.endswith(".yaml") else "application/gzip"
                    status = "200 OK"
                else:
                    body, kind, status = b"not found\n", "text/plain", "404 Not Found"
                tls.sendall(
                    f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
            line = buf.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            if len(parts) < 2 or parts[0] != "CONNECT" or parts[1] != f"{HOST}:443":
                self.refused.append(line)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            conn.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            self._serve_tls(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def _loop(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._server], [], [], 0.2)
                if not ready:
                    continue
                conn, _ = self._server.accept()
            except (OSError, ValueError):  # closed by stop()
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def start(self, cert: Path, key: Path) -> ChartRepo:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(str(cert), str(key))
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        self._server = server
        self.proxy_url = f"http://127.0.0.1:{server.getsockname()[1]}"
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()


def serve(helm: str, workdir: Path, version: str, env: Mapping[str, str]) -> ChartRepo:
    """Package the stand-in chart with the real helm and serve it behind the proxy."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca, cert, key = _ca_and_leaf(workdir)
    repo = build_repo(helm, workdir, version, env)
    return ChartRepo(repo=repo, ca_file=ca).start(cert, key)
