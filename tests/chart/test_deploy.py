"""Offline checks of sked's deployment files (run by scripts/check-deploy.sh).

1. The Helm chart lints (strict) and renders for the default values and for every
   tests/chart/values-*.yaml; the values are checked against values.schema.json.
2. Every rendered manifest validates against the Kubernetes OpenAPI schema (kubernetes-validate,
   strict: unknown fields fail); the ServiceMonitor, a CRD, against tests/chart/schemas/.
3. docker-compose.yml (alone, and with docker-compose.tracing.yml and the tracing profile) is
   valid for Debian's docker-compose, which needs no engine for `config`.
4. Every SKED_* variable in docker-compose*.yml and in the rendered chart, and every key of the
   rendered sked.toml, names a real configuration key: with the built binaries
   (target/debug/sked-*, `--dump-config`, exit 64 on an unknown key) when they are at least as
   new as the configuration code, and always with the keys of crates/core/src/config/default.toml.

Plus: the health probe built into the image works, the chart README lists every value, and
docs/operations.md and dashboards/sked.json only name metrics that exist.

No cluster, no Docker engine and no network are needed. Nothing is skipped: a missing tool is
an error (check-deploy.sh installs them).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import tomllib
from functools import cache
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sked"
HERE = Path(__file__).resolve().parent
VALUES_FILES = sorted(HERE.glob("values-*.yaml"))
VALUE_SETS = ["default"] + [p.stem for p in VALUES_FILES]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_TRACING = ROOT / "docker-compose.tracing.yml"
DEFAULTS = ROOT / "crates" / "core" / "src" / "config" / "default.toml"
CONFIG_DOCS = ROOT / "docs" / "configuration.md"
BIN_DIR = ROOT / "target" / "debug"
SERVICES = ["ingest", "scheduler", "worker", "replayer"]
# The web console: a service too, but it needs neither Kafka nor Redis and has no drain_timeout.
CONSOLE = "console"
EXIT_CONFIG = 64

# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema shipped
# by kubernetes-validate. preStop `sleep` needs 1.30, so value sets using it start there.
KUBE_OLDEST = "1.25.0"
KUBE_WITH_SLEEP = "1.30.0"
KUBE_NEWEST = kubernetes_validate.latest_version()

# Placeholder values for variables that come from Secrets at run time.
SECRET_PLACEHOLDERS = {
    "SKED_REDIS__URL": "rediss://sked:placeholder@redis.example:6380",
}


# ---------------------------------------------------------------------------------------------
# Helpers


def values_for(name: str) -> dict | None:
    if name == "default":
        return None
    return yaml.safe_load((HERE / f"{name}.yaml").read_text())


def render(values: dict | None) -> tuple[tuple[str, dict], ...]:
    """(template path, document) of every manifest the chart renders for these values."""
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name="sked", namespace="sked", is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
    return tuple(docs)


@cache
def rendered(name: str) -> tuple[tuple[str, dict], ...]:
    """render() of a value set."""
    return render(values_for(name))


def kinds(name: str, kind: str) -> list[dict]:
    return [d for _, d in rendered(name) if d["kind"] == kind]


def pod_specs(name: str) -> list[tuple[str, dict]]:
    """(workload name, pod spec) of every Deployment and Job."""
    out = []
    for _, d in rendered(name):
        if d["kind"] in ("Deployment", "Job"):
            out.append((d["metadata"]["name"], d["spec"]["template"]["spec"]))
    return out


def config_maps(name: str) -> dict[str, str]:
    return {d["metadata"]["name"]: d["data"]["sked.toml"] for d in kinds(name, "ConfigMap")}


def env_of(container: dict) -> dict[str, str]:
    """A container's environment, Secret references replaced by placeholders."""
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        else:
            env[e["name"]] = SECRET_PLACEHOLDERS.get(e["name"], "placeholder")
    return env


def compose_config(*files: Path, profile: str | None = None) -> dict:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (scripts/check-deploy.sh installs Debian's)"
    cmd = [exe]
    for f in files:
        cmd += ["-f", str(f)]
    if profile:
        cmd += ["--profile", profile]
    cmd += ["config"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKED_", "COMPOSE_"))}
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stderr}"
    return yaml.safe_load(res.stdout)


# ---------------------------------------------------------------------------------------------
# Configuration keys: the TOML fallback (always) and the binaries (when built and fresh)

NOT_CONFIG = {"SKED_CONFIG_FILE", "SKED_API_URL", "SKED_REPLAYER_URL", "SKED_TOKEN"}
NOT_CONFIG_PREFIXES = ("SKED_TEST_", "SKED_DEV_", "SKED_TOOLS_")


# Tables of default.toml whose keys are names (properties, apps, key ids), not config keys.
MAP_TABLES = ("kafka.rdkafka", "kafka.rdkafka_files", "apps", "encryption.keys")
# Optional keys without a default (docs/configuration.md): any string.
OPTIONAL_KEYS = ("redis.password", "redis.password_file")
# `[console.oidc]`, an optional table (not in default.toml): its keys.
OIDC_KEYS = ("issuer", "client_id", "client_secret", "client_secret_file", "redirect_url", "scopes", "token", "name")


@cache
def default_keys() -> dict[str, object]:
    """Dotted leaf keys of default.toml with their default values."""
    out: dict[str, object] = {}

    def walk(prefix: str, table: dict) -> None:
        for k, v in table.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict) and key not in MAP_TABLES:
                walk(key + ".", v)
            else:
                out[key] = v

    walk("", tomllib.loads(DEFAULTS.read_text()))
    return out


@cache
def app_keys() -> set[str]:
    """`apps.<name>.X` keys documented in docs/configuration.md (X may be a table)."""
    keys = set(re.findall(r"`apps\.<name>\.([a-z_]+)`", CONFIG_DOCS.read_text()))
    assert keys, "no apps.<name>.* keys found in docs/configuration.md"
    return keys


def env_path(name: str) -> list[str]:
    """Mirror of the loader: SKED_A__B → [a, b]; librdkafka properties keep their dots."""
    parts = [p.lower() for p in name[len("SKED_"):].split("__")]
    if len(parts) == 3 and parts[0] == "kafka" and parts[1] in ("rdkafka", "rdkafka_files"):
        parts[2] = parts[2].replace("_", ".")
    return parts


def key_problem(path: list[str], value: object = None) -> str | None:
    """Why a dotted key is not a sked configuration key, or None when it is."""
    key = ".".join(path)
    if path[0] == "kafka" and path[1:2] in (["rdkafka"], ["rdkafka_files"]):
        if len(path) != 3 or not re.fullmatch(r"[a-z0-9]+(\.[a-z0-9_]+)*", path[2]):
            return f"`{key}`: not a librdkafka property"
        if value is not None and not isinstance(value, str):
            return f"`{key}`: librdkafka properties are strings"
        return None
    if path[:2] == ["auth", "tokens"]:
        if len(path) != 4 or path[3] not in ("hash", "scopes", "tenants"):
            return f"`{key}`: expected auth.tokens.<name>.hash|scopes|tenants"
        return None
    if path[:2] == ["console", "oidc"]:
        return None if len(path) == 3 and path[2] in OIDC_KEYS else f"`{key}`: not a console.oidc key ({OIDC_KEYS})"
    if path[:2] == ["auth", "jwt"] or key == "auth.tokens_file" or path[0] == "quotas":
        return None  # free-form tables, checked by sked's own loader
    if path[:2] == ["encryption", "keys"]:
        if len(path) != 4 or path[3] != "file" or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", path[2]):
            return f"`{key}`: expected encryption.keys.<id>.file"
        if value is not None and not isinstance(value, str):
            return f"`{key}`: a path"
        return None
    if key in OPTIONAL_KEYS:
        return None if value is None or isinstance(value, str) else f"`{key}`: a string"
    if path[0] == "apps":
        if len(path) < 3:
            return f"`{key}`: expected apps.<name>.<key>"
        if path[2] not in app_keys():
            return f"`{key}`: `{path[2]}` is not an app key ({sorted(app_keys())})"
        return None
    defaults = default_keys()
    if key not in defaults:
        return f"`{key}`: unknown key (not in default.toml)"
    default = defaults[key]
    if value is not None and type(value) is not type(default):
        return f"`{key}`: {value!r} has not the type of the default {default!r}"
    return None


def env_problems(env: dict[str, str]) -> list[str]:
    problems = []
    for name in env:
        if not name.startswith("SKED_") or name in NOT_CONFIG or name.startswith(NOT_CONFIG_PREFIXES):
            continue
        why = key_problem(env_path(name))
        if why:
            problems.append(f"env {name}: {why}")
    return problems


def toml_problems(text: str) -> list[str]:
    problems = []

    def walk(path: list[str], table: dict) -> None:
        for k, v in table.items():
            p = path + [k]
            if p[0] == "kafka" and p[1:2] in (["rdkafka"], ["rdkafka_files"]) and len(p) == 3:
                why = key_problem(p, v)
            elif p[:2] == ["encryption", "keys"] and len(p) == 3 and isinstance(v, dict):
                problems.extend(w for k2, v2 in v.items() if (w := key_problem(p + [k2], v2)))
                continue
            elif p[0] == "apps" and len(p) >= 3:
                why = key_problem(p[:3])
            elif p[:2] in (["auth", "tokens"], ["auth", "jwt"], ["console", "oidc"]) or p[0] == "quotas":
                why = key_problem(p, v) if not isinstance(v, dict) else None
                if isinstance(v, dict):
                    walk(p, v)
                    continue
            elif isinstance(v, dict):
                if ".".join(p) not in MAP_TABLES and ".".join(p) in default_keys():
                    why = f"`{'.'.join(p)}` is a value, not a table"
                else:
                    walk(p, v)
                    continue
            else:
                why = key_problem(p, v)
            if why:
                problems.append(why)

    walk([], tomllib.loads(text))
    return problems


def fresh_binary(name: str) -> Path | None:
    """target/debug/<name> when it exists and is newer than the configuration code."""
    exe = BIN_DIR / name
    if not exe.is_file():
        return None
    newest_source = max(p.stat().st_mtime for p in DEFAULTS.parent.iterdir())
    if exe.stat().st_mtime < newest_source:
        return None
    return exe


def dump_config(binary: str, env: dict[str, str], config_text: str | None, tmp_path: Path) -> str | None:
    """Runs `<binary> --dump-config` with exactly this environment; None when no fresh binary."""
    exe = fresh_binary(binary)
    if exe is None:
        return None
    args = [str(exe)]
    if binary == "sked":
        args += ["topics", "create"]
    if config_text is not None:
        cfg = tmp_path / f"{binary}.toml"
        cfg.write_text(config_text)
        args += ["--config", str(cfg)]
    args.append("--dump-config")
    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    run_env.update(env)
    res = subprocess.run(args, env=run_env, capture_output=True, text=True, timeout=60)
    assert res.returncode != EXIT_CONFIG, (
        f"{binary} rejected the configuration (exit 64):\n{res.stderr}"
    )
    assert res.returncode == 0, f"{binary} --dump-config exited {res.returncode}:\n{res.stderr}"
    return res.stdout


# ---------------------------------------------------------------------------------------------
# 1. Lint, schema, render


@pytest.mark.parametrize("name", VALUE_SETS)
def test_chart_lints_strict(name):
    report = helm.lint(str(CHART), values_for(name), strict=True, namespace="sked")
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not findings, json.dumps(report, indent=2)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_values_match_schema(name):
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values_for(name))


@pytest.mark.parametrize(
    "bad",
    [
        {"wokrer": {"replicas": 2}},
        {"kafka": {"securityProtocol": "SASL_SSL"}},
        {"kafka": {"securityProtocol": "TLS"}},
        {"redis": {"url": "http://redis:6379"}},
        {"config": {"kafka": {"brokers": "elsewhere:9092"}}},
        {"config": {"worker": {"drain_timeout": "5m"}}},
        {"worker": {"drainTimeoutSeconds": "30s"}},
        {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
        {"console": {"enabeld": True}},
        {"console": {"enabled": "yes"}},
        {"console": {"pathPrefix": "sked"}},
        {"console": {"pathPrefix": "/sked/"}},
        {"console": {"pathPrefix": "/a b"}},
        {"console": {"apiUrl": "ingest:8080"}},
        {"console": {"dlqApiUrl": "ftp://replayer:8081"}},
        {"console": {"secureCookie": "false"}},
        {"console": {"service": {"port": 0}}},
        {"console": {"drainSeconds": "20s"}},
        {"console": {"autoscaling": {"enabled": True}}},
        {"config": {"console": {"api_url": "http://elsewhere:8080"}}},
        {"config": {"console": {"listen_addr": "0.0.0.0:1"}}},
    ],
    ids=lambda v: json.dumps(v, separators=(",", ":")),
)
def test_schema_rejects_bad_values(bad):
    with helm.Chart.load(str(CHART)) as chart:
        with pytest.raises(helm.HelmError):
            chart.validate_schema(bad)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_chart_renders(name):
    assert rendered(name), f"{name}: nothing rendered"


# ---------------------------------------------------------------------------------------------
# 2. Kubernetes schemas


@pytest.mark.parametrize("name", VALUE_SETS)
def test_manifests_match_kubernetes_schema(name):
    uses_sleep = any(
        c.get("lifecycle", {}).get("preStop", {}).get("sleep")
        for _, spec in pod_specs(name)
        for c in spec["containers"]
    )
    versions = [KUBE_WITH_SLEEP if uses_sleep else KUBE_OLDEST, KUBE_NEWEST]
    sm_schema = json.loads((HERE / "schemas" / "servicemonitor.schema.json").read_text())
    problems = []
    for path, doc in rendered(name):
        label = f"{path} {doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "ServiceMonitor":
            errors = list(jsonschema.Draft7Validator(sm_schema).iter_errors(doc))
            problems += [f"{label}: {e.json_path}: {e.message}" for e in errors]
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{label} (k8s {version}): {e.path}: {e.message}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Chart behaviour


def deployments(name: str) -> dict[str, dict]:
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in kinds(name, "Deployment")}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_pod_is_locked_down(name):
    for workload, spec in pod_specs(name):
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", workload
        assert spec.get("automountServiceAccountToken") is False, workload
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, workload
            assert sc["allowPrivilegeEscalation"] is False, workload
            assert sc["capabilities"]["drop"] == ["ALL"], workload
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", workload
            assert c["args"][-2:] == ["--config", "/etc/sked/config/sked.toml"], workload
            assert "limits" in c["resources"] and "requests" in c["resources"], workload


@pytest.mark.parametrize("name", VALUE_SETS)
def test_probes_and_grace_period_follow_drain_timeout(name):
    values = helm_values(name)
    for component, d in deployments(name).items():
        spec = d["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        assert c["command"] == [f"/usr/local/bin/sked-{component}"]
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
        svc = values[component]
        # The console has no drain_timeout key: drainSeconds stands in for it.
        drain = svc["drainSeconds" if component == CONSOLE else "drainTimeoutSeconds"]
        grace = spec["terminationGracePeriodSeconds"]
        assert grace == svc["preStopSleepSeconds"] + drain + values["terminationGraceMarginSeconds"]
        assert grace > drain
        if component == CONSOLE:
            assert "drain_timeout" not in tomllib.loads(config_maps(name)["sked-console-config"])["console"]
            continue
        toml = tomllib.loads(config_maps(name)["sked-config"])
        assert toml[component]["drain_timeout"] == f"{drain}s"


@cache
def helm_values(name: str) -> dict:
    with helm.Chart.load(str(CHART)) as chart:
        return chart.merge_values(values_for(name))


def test_default_values_deploy_every_service_without_hpa():
    assert set(deployments("default")) == set(SERVICES)
    assert not kinds("default", "HorizontalPodAutoscaler")
    assert not kinds("default", "ServiceMonitor")
    assert {s["metadata"]["name"] for s in kinds("default", "Service")} == {
        "sked-ingest", "sked-replayer",
        *(f"sked-{s}-metrics" for s in SERVICES),
    }
    assert len(kinds("default", "PodDisruptionBudget")) == 4
    (job,) = kinds("default", "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["topics", "create"]


def test_full_values_use_secrets_hpa_and_servicemonitor():
    name = "values-full"
    (hpa,) = kinds(name, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "sked-worker"
    assert "replicas" not in deployments(name)["worker"]["spec"]
    (sm,) = kinds(name, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for workload, spec in pod_specs(name):
        if workload == "sked-console":
            continue  # no Secret at all: test_console_gets_no_secret
        (c,) = spec["containers"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
        assert refs["SKED_REDIS__URL"] == {"name": "sked-redis", "key": "url"}, workload
        assert refs["SKED_KAFKA__RDKAFKA__SASL_USERNAME"]["name"] == "sked-kafka", workload
        assert refs["SKED_KAFKA__RDKAFKA__SASL_PASSWORD"]["key"] == "password", workload
        assert refs["SKED_KAFKA__RDKAFKA__SSL_KEY_PASSWORD"]["name"] == "sked-kafka-tls", workload
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/etc/sked/kafka-tls" in mounts, workload
        assert "/etc/sked/keys" in mounts, workload
        keys = {v["name"]: v for v in spec["volumes"]}["encryption-keys"]
        assert keys["secret"]["secretName"] == "sked-payload-keys", workload
        assert c["image"].endswith("@sha256:" + "0123456789abcdef" * 4), workload
    for cm, text in config_maps(name).items():
        if cm == "sked-console-config":
            continue
        cfg = tomllib.loads(text)
        assert "url" not in cfg["redis"], f"{cm}: the Redis URL comes from the Secret"
        assert cfg["redis"]["cluster"] is True, f"{cm}: redis.cluster from the values"
        assert cfg["kafka"]["rdkafka"]["security.protocol"] == "SASL_SSL"
        assert cfg["kafka"]["rdkafka"]["ssl.ca.location"] == "/etc/sked/kafka-tls/ca.crt"
        assert cfg["apps"]["sms"]["retry"]["max_attempts"] == 5
        assert cfg["encryption"] == {
            "enabled": True,
            "current_key": "k2",
            "keys": {"k1": {"file": "/etc/sked/keys/k1"}, "k2": {"file": "/etc/sked/keys/k2"}},
        }, cm
        assert not re.search(r"password\s*=", text), f"{cm}: a secret in the ConfigMap"


def console_resources(name: str) -> list[str]:
    return [f"{d['kind']}/{d['metadata']['name']}" for _, d in rendered(name)
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == CONSOLE
            or "console" in d["metadata"]["name"]]


@pytest.mark.parametrize("name", ["default", "values-minimal"])
def test_console_is_absent_unless_enabled(name):
    assert not helm_values(name)["console"]["enabled"]
    assert not console_resources(name), console_resources(name)
    for cm, text in config_maps(name).items():
        assert "console" not in tomllib.loads(text), f"{cm}: console keys with the console off"


def test_console_renders_when_enabled():
    name = "values-full"
    assert sorted(console_resources(name)) == [
        "ConfigMap/sked-console-config", "Deployment/sked-console",
        "PodDisruptionBudget/sked-console", "Service/sked-console", "Service/sked-console-metrics",
    ]
    d = deployments(name)[CONSOLE]
    assert d["spec"]["replicas"] == 1
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["/usr/local/bin/sked-console"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"admin": 9464, "http": 8090}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    # Same pod hardening as the other services (test_every_pod_is_locked_down checks each field).
    other = deployments(name)["ingest"]["spec"]["template"]["spec"]
    assert d["spec"]["template"]["spec"]["securityContext"] == other["securityContext"]
    assert c["securityContext"] == other["containers"][0]["securityContext"]
    assert env_of(c)["SKED_CONSOLE__SESSION_MAX"] == "8h"
    services = {s["metadata"]["name"]: s for s in kinds(name, "Service")}
    svc = services["sked-console"]
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8090, "targetPort": "http", "protocol": "TCP"}]
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == CONSOLE
    metrics = services["sked-console-metrics"]
    assert metrics["metadata"]["labels"]["sked-metrics"] == "true"  # picked up by the ServiceMonitor
    assert metrics["spec"]["ports"][0]["targetPort"] == "admin"
    # Sessions live in one process's memory: never autoscaled.
    assert all(h["spec"]["scaleTargetRef"]["name"] != "sked-console" for h in kinds(name, "HorizontalPodAutoscaler"))


@pytest.mark.parametrize("overrides", [{}, {"fullnameOverride": "jobs", "ingest": {"service": {"port": 18080}}}],
                         ids=["values-full", "renamed"])
def test_console_calls_the_release_services(overrides):
    """console.api_url and dlq_api_url name this release's ingest and replayer Services and ports."""
    docs = [d for _, d in render({**values_for("values-full"), **overrides})]
    full = overrides.get("fullnameOverride", "sked")
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"{full}-console-config"]
    cfg = tomllib.loads(cm["data"]["sked.toml"])
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for key, service in (("api_url", f"{full}-ingest"), ("dlq_api_url", f"{full}-replayer")):
        m = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc:(\d+)", cfg["console"][key])
        assert m, cfg["console"][key]
        assert (m[1], m[2]) == (service, "sked"), cfg["console"][key]
        assert int(m[3]) == services[service]["spec"]["ports"][0]["port"], key
    assert cfg["console"]["listen_addr"] == "0.0.0.0:8090"
    assert cfg["console"]["path_prefix"] == "/sked"
    assert cfg["console"]["secure_cookie"] is True
    assert cfg["console"]["session_idle"] == "1h" and cfg["console"]["refresh"] == "5s"
    assert cfg["admin"]["listen_addr"] == "0.0.0.0:9464"
    assert set(cfg) == {"admin", "console", "log"}, "the console reads nothing else"


def test_console_gets_no_secret_but_its_oidc_client_secret():
    """values-full has every Secret in use; the console pod mounts none of them and references
    only the OIDC client secret, whose sign-in settings are in its ConfigMap."""
    name = "values-full"
    (spec,) = [spec for workload, spec in pod_specs(name) if workload == "sked-console"]
    (c,) = spec["containers"]
    assert [(e["name"], e["valueFrom"]["secretKeyRef"]) for e in c["env"] if "valueFrom" in e] == [
        ("SKED_CONSOLE__OIDC__CLIENT_SECRET", {"name": "sked-console-oidc", "key": "client-secret"})
    ]
    oidc = tomllib.loads(config_maps(name)["sked-console-config"])["console"]["oidc"]
    assert oidc["client_id"] == "sked-console" and "client_secret" not in oidc
    with pytest.raises(helm.HelmError, match="needs config.console.oidc"):
        render({"console": {"enabled": True, "oidcClientSecret": {"existingSecret": "s"}}})
    assert not [v["name"] for v in spec["volumes"] if "secret" in v]
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/etc/sked/config", "/tmp"}
    text = config_maps(name)["sked-console-config"]
    assert not re.search(r"kafka|redis|encryption|auth|/etc/sked/", text), text


def test_console_needs_api_urls_without_ingest_or_replayer():
    for off, value in (("ingest", "apiUrl"), ("replayer", "dlqApiUrl")):
        with pytest.raises(helm.HelmError, match=f"console.{value} is required"):
            render({"console": {"enabled": True}, off: {"enabled": False}})
    docs = render({
        "console": {"enabled": True, "apiUrl": "https://api.example/", "dlqApiUrl": "https://dlq.example"},
        "ingest": {"enabled": False},
        "replayer": {"enabled": False},
    })
    (cm,) = [d for _, d in docs if d["metadata"]["name"] == "sked-console-config"]
    cfg = tomllib.loads(cm["data"]["sked.toml"])["console"]
    assert (cfg["api_url"], cfg["dlq_api_url"]) == ("https://api.example/", "https://dlq.example")


def test_minimal_values_deploy_only_ingest_and_scheduler():
    name = "values-minimal"
    assert set(deployments(name)) == {"ingest", "scheduler"}
    assert not kinds(name, "Job") and not kinds(name, "PodDisruptionBudget")
    assert not kinds(name, "ServiceAccount")
    assert [s["metadata"]["name"] for s in kinds(name, "Service")] == ["sked-ingest"]
    cfg = tomllib.loads(config_maps(name)["sked-config"])
    assert cfg["redis"]["url"] == "redis://redis-master.redis.svc:6379/0"


# ---------------------------------------------------------------------------------------------
# 3. docker-compose


@cache
def compose(tracing: bool) -> dict:
    if tracing:
        return compose_config(COMPOSE, COMPOSE_TRACING, profile="tracing")
    return compose_config(COMPOSE)


def port_mapping(port) -> tuple[str, str, str]:
    """(host ip, published, target) of a port in either form `docker-compose config` prints."""
    if isinstance(port, dict):
        return port.get("host_ip", ""), str(port["published"]), str(port["target"])
    host_ip, published, target = str(port).split("/")[0].split(":")
    return host_ip, published, target


@pytest.mark.parametrize("tracing", [False, True], ids=["base", "tracing"])
def test_compose_file_is_valid(tracing):
    services = compose(tracing)["services"]
    expected = {"kafka", "redis", "topics-init", *SERVICES, CONSOLE}
    assert expected <= set(services)
    if tracing:
        assert {"otel-collector", "jaeger"} <= set(services)
        for s in SERVICES:
            assert services[s]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_compose_console_calls_the_apis_inside_the_network():
    services = compose(False)["services"]
    env = services[CONSOLE]["environment"]
    assert env["SKED_CONSOLE__LISTEN_ADDR"] == "0.0.0.0:8090"
    # The URLs name the compose services and the ports they listen on.
    ingest_port = services["ingest"]["environment"]["SKED_HTTP__LISTEN_ADDR"].rsplit(":", 1)[1]
    replayer_port = services["replayer"]["environment"]["SKED_REPLAYER__LISTEN_ADDR"].rsplit(":", 1)[1]
    assert env["SKED_CONSOLE__API_URL"] == f"http://ingest:{ingest_port}"
    assert env["SKED_CONSOLE__DLQ_API_URL"] == f"http://replayer:{replayer_port}"
    # Secure by default: browsers keep a Secure cookie on http://localhost.
    assert env["SKED_CONSOLE__SECURE_COOKIE"] == "true"
    ports = {port_mapping(p) for p in services[CONSOLE]["ports"]}
    assert ports == {("127.0.0.1", "8090", "8090"), ("127.0.0.1", "9468", "9464")}
    assert services[CONSOLE]["depends_on"]["ingest"]["condition"] == "service_healthy"
    # It holds no credential and talks to neither Kafka nor Redis.
    assert not [k for k in env if k.startswith(("SKED_KAFKA__", "SKED_REDIS__", "SKED_AUTH__"))], env
    assert "kafka" not in services[CONSOLE]["depends_on"] and "redis" not in services[CONSOLE]["depends_on"]


def test_compose_services_are_bounded_healthy_and_local():
    services = compose(False)["services"]
    drain = {k.split(".")[0]: v for k, v in default_keys().items() if k.endswith(".drain_timeout")}
    for name, svc in services.items():
        limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
        assert "memory" in limits and "cpus" in limits, f"{name}: no resource limits"
        for port in svc.get("ports", []):
            assert port_mapping(port)[0] == "127.0.0.1", f"{name}: port {port} not bound to 127.0.0.1"
        if name in SERVICES:
            test = svc["healthcheck"]["test"]
            assert test[:2] == ["CMD", "/usr/local/bin/sked-probe"], f"{name}: {test}"
            assert test[2] == "http://127.0.0.1:9464/readyz"
            assert svc["command"] == [f"/usr/local/bin/sked-{name}"]
            assert svc["depends_on"]["topics-init"]["condition"] == "service_completed_successfully"
            assert svc["environment"]["SKED_ADMIN__LISTEN_ADDR"] == "0.0.0.0:9464"
            grace = int(svc["stop_grace_period"].rstrip("s"))
            assert grace > int(drain[name].rstrip("s")), f"{name}: stop_grace_period <= drain_timeout"
    console = services[CONSOLE]
    assert console["healthcheck"]["test"][1:3] == ["/usr/local/bin/sked-probe", "http://127.0.0.1:9464/readyz"]
    assert console["command"] == ["/usr/local/bin/sked-console"]
    assert console["environment"]["SKED_ADMIN__LISTEN_ADDR"] == "0.0.0.0:9464"
    assert console["restart"] == "unless-stopped" and "stop_grace_period" in console
    assert services["redis"]["command"][:3] == ["redis-server", "--appendonly", "yes"]
    assert services["topics-init"]["command"] == ["/usr/local/bin/sked", "topics", "create"]
    assert services["topics-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"


# ---------------------------------------------------------------------------------------------
# 4. SKED_* variables and rendered config name real keys


def chart_cases() -> list[tuple[str, str, str, dict, str]]:
    """(value set, workload, binary, env, sked.toml) of every container the chart renders."""
    cases = []
    for name in VALUE_SETS:
        cms = config_maps(name)
        for workload, spec in pod_specs(name):
            volume = next(v for v in spec["volumes"] if v["name"] == "config")
            text = cms[volume["configMap"]["name"]]
            for c in spec["containers"]:
                binary = Path((c.get("command") or ["/usr/local/bin/sked"])[0]).name
                cases.append((name, workload, binary, env_of(c), text))
    return cases


def compose_cases() -> list[tuple[str, str, dict]]:
    cases = []
    for tracing in (False, True):
        for svc_name, svc in compose(tracing)["services"].items():
            env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
            if svc.get("image", "").startswith(("apache/", "redis", "otel/", "jaegertracing/")):
                assert not any(k.startswith("SKED_") for k in env), svc_name
                continue
            binary = Path(svc["command"][0]).name
            cases.append((f"{'tracing' if tracing else 'base'}:{svc_name}", binary, env))
    return cases


def test_chart_config_and_env_name_real_keys(tmp_path):
    problems = []
    for name, workload, binary, env, text in chart_cases():
        problems += [f"{name} {workload}: {p}" for p in env_problems(env) + toml_problems(text)]
    assert not problems, "\n".join(problems)


def test_compose_env_names_real_keys():
    problems = []
    for label, _, env in compose_cases():
        problems += [f"{label}: {p}" for p in env_problems(env)]
    assert not problems, "\n".join(problems)


def test_binaries_accept_chart_and_compose_configuration(tmp_path):
    """The real loader, when target/debug holds binaries built from the current config code."""
    checked, stale = 0, set()
    keys = tmp_path / "keys"
    keys.mkdir()
    for name, workload, binary, env, text in chart_cases():
        # The encryption-keys Secret, as Kubernetes mounts it: one file per key id.
        for key_id in re.findall(r"/etc/sked/keys/([A-Za-z0-9_.-]+)", text):
            (keys / key_id).write_text("ab" * 32 + "\n")
        text = text.replace("/etc/sked/keys/", f"{keys}/")
        out = dump_config(binary, env, text, tmp_path)
        if out is None:
            stale.add(binary)
            continue
        tomllib.loads(out)
        checked += 1
    for label, binary, env in compose_cases():
        out = dump_config(binary, env, None, tmp_path)
        if out is None:
            stale.add(binary)
            continue
        dumped = tomllib.loads(out)
        if binary == "sked-console":
            assert dumped["console"]["api_url"] == "http://ingest:8080", label
        else:
            assert dumped["kafka"]["brokers"] == "kafka:9092", label
        checked += 1
    print(f"binary check: {checked} configurations loaded by target/debug binaries; "
          f"no fresh binary for: {sorted(stale) or 'none'} (the default.toml key check covers those)")


def test_binary_rejects_unknown_key_when_present(tmp_path):
    """The binary path really detects a typo (or, without binaries, the fallback does)."""
    env = {"SKED_KAFKA__BROKRES": "kafka:9092"}
    assert env_problems(env), "fallback missed SKED_KAFKA__BROKRES"
    exe = fresh_binary("sked-ingest")
    if exe is not None:
        res = subprocess.run([str(exe), "--dump-config"], env={"PATH": "/usr/bin:/bin", **env},
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == EXIT_CONFIG, res.stderr


# ---------------------------------------------------------------------------------------------
# Image: Dockerfile shape and the health probe it builds


DOCKERFILE = ROOT / "docker" / "Dockerfile"


def test_dockerfile_shape():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert "ARG RUST_IMAGE=rust:1.95-bookworm" in text
    assert "ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot" in text
    assert froms[-1] == "${RUNTIME_IMAGE}"
    assert "cargo build --release --locked" in text
    assert not re.search(r"^(ENTRYPOINT|CMD)\b", text, re.M)
    assert re.search(r"^USER 65532:65532$", text, re.M)
    for pkg in ("cmake", "make", "gcc", "perl", "zlib1g-dev"):
        assert pkg in text
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "target" in ignore and ".git" in ignore


def shipped_packages() -> dict[str, list[str]]:
    """Package → binaries of the CLI and of every service (services/*): what the image ships."""
    out = {}
    for manifest in [ROOT / "crates" / "cli" / "Cargo.toml", *sorted(ROOT.glob("services/*/Cargo.toml"))]:
        cargo = tomllib.loads(manifest.read_text())
        out[cargo["package"]["name"]] = [b["name"] for b in cargo.get("bin", [])]
    return out


def test_dockerfile_builds_and_installs_every_service_binary():
    text = DOCKERFILE.read_text()
    packages = re.search(r'^ENV BUILD_PACKAGES="([^"]*)"', text, re.M).group(1).split("-p")
    built = {p.strip() for p in packages if p.strip()}
    installed = set(re.search(r"for bin in ([^;]+); do", text).group(1).split())
    for package, bins in shipped_packages().items():
        assert package in built, f"docker/Dockerfile BUILD_PACKAGES lacks -p {package}"
        assert set(bins) <= installed, f"docker/Dockerfile does not install {bins}"
    run = {Path(svc["command"][0]).name for svc in compose(False)["services"].values()
           if svc.get("command", [""])[0].startswith("/usr/local/bin/")}
    run |= {Path(c["command"][0]).name for name in VALUE_SETS
            for _, spec in pod_specs(name) for c in spec["containers"]}
    assert run <= installed, f"run by compose or the chart but not in the image: {run - installed}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        code = 200 if self.path == "/healthz" else 503
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


def test_health_probe_in_dockerfile_works(tmp_path):
    text = DOCKERFILE.read_text()
    match = re.search(r"COPY <<'RUST' \S+\n(.*?)\nRUST\n", text, re.S)
    assert match, "sked-probe heredoc not found in docker/Dockerfile"
    src = tmp_path / "sked-probe.rs"
    src.write_text(match.group(1))
    exe = tmp_path / "sked-probe"
    rustc = shutil.which("rustc")
    assert rustc, "rustc is required to build sked-probe"
    res = subprocess.run([rustc, "--edition", "2021", "-C", "opt-level=s", "-o", str(exe), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        def probe(path):
            return subprocess.run([str(exe), f"http://127.0.0.1:{port}{path}", "2"],
                                  capture_output=True, timeout=30).returncode
        assert probe("/healthz") == 0
        assert probe("/readyz") == 1
    finally:
        server.shutdown()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert subprocess.run([str(exe), f"http://127.0.0.1:{closed}/readyz", "1"],
                          capture_output=True, timeout=30).returncode == 1


# ---------------------------------------------------------------------------------------------
# Documentation and dashboard consistency


# Values that are Kubernetes objects or sked configuration, documented as one row each.
OPAQUE_VALUES = ("config", "kafka.rdkafka", "resources", "podSecurityContext", "containerSecurityContext")


def leaf_paths(value, prefix=""):
    opaque = prefix.rstrip(".") in OPAQUE_VALUES or prefix.rstrip(".").endswith(".resources")
    if isinstance(value, dict) and value and not opaque:
        for k, v in value.items():
            yield from leaf_paths(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip(".")


def test_chart_readme_lists_every_value():
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []
    for path in leaf_paths(values):
        # Per-service values are documented once as `<service>.x`.
        parts = path.split(".")
        generic = ".".join(["<service>"] + parts[1:]) if parts[0] in SERVICES else path
        if f"`{path}`" not in readme and f"`{generic}`" not in readme:
            missing.append(path)
    assert not missing, f"charts/sked/README.md does not list: {missing}"


@cache
def metric_names() -> set[str]:
    """Exposed names (with _total for counters) registered in services/*/src/metrics.rs."""
    names = set()
    for f in (ROOT / "services").glob("*/src/metrics.rs"):
        text = f.read_text()
        prefix = re.search(r'sub_registry_with_prefix\("([a-z_]+)"\)', text).group(1)
        fields = {}
        for field, kind in re.findall(r"pub (\w+): (?:Family<\w+, )?(Counter|WaitCounter|Gauge|Histogram)", text):
            fields[field] = kind
        for metric, field in re.findall(r'r\.register\(\s*"(\w+)",\s*"[^"]*",\s*m\.(\w+)\.clone\(\)', text):
            kind = fields.get(field)
            full = f"{prefix}_{metric}"
            # WaitCounter is a float Counter (worker rate_limit.rs): exposed with _total too.
            names.add(full + "_total" if kind in ("Counter", "WaitCounter") else full)
    assert len(names) > 20, names
    return names


def mentioned_metrics(text: str) -> set[str]:
    found = set(re.findall(r"\bsked_(?:ingest|scheduler|worker|replayer)_[a-z_]+", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in found}


def test_operations_doc_covers_every_metric():
    doc = (ROOT / "docs" / "operations.md").read_text()
    mentioned = mentioned_metrics(doc)
    assert not (mentioned - metric_names()), f"unknown metrics in docs: {mentioned - metric_names()}"
    assert not (metric_names() - mentioned), f"metrics not documented: {metric_names() - mentioned}"


def test_dashboard_uses_only_real_metrics():
    dash = json.loads((ROOT / "dashboards" / "sked.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert exprs
    used = set().union(*(mentioned_metrics(e) for e in exprs))
    assert not (used - metric_names()), f"unknown metrics in dashboard: {used - metric_names()}"
    assert "sked_scheduler_fire_lateness_seconds" in used
    assert any("histogram_quantile" in e and "fire_lateness_seconds_bucket" in e for e in exprs)
