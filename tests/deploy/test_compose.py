"""docker-compose.yml, checked without Docker (none runs here): structure, pinned images,
mounted files that exist, start-up order that converges, and settings that agree with the
collector config and the Grafana provisioning.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.paths import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
COLLECTOR = yaml.safe_load((ROOT / "collector-config" / "otelcol.yaml").read_text(encoding="utf-8"))
DATASOURCE = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/clickhouse.yaml").read_text())["datasources"][
    0
]


def env(service: str) -> dict[str, str]:
    value = SERVICES[service].get("environment", {})
    if isinstance(value, list):
        value = dict(item.split("=", 1) for item in value)
    return {k: str(v) for k, v in value.items()}


def default(value: str) -> str:
    """${VAR:-default} -> default, as compose interpolates with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def ports(service: str) -> dict[int, int]:
    out = {}
    for spec in SERVICES[service].get("ports", []):  # "host:container" (optionally "/tcp")
        host, container = str(spec).split("/")[0].split(":")[-2:]
        out[int(container)] = int(host)
    return out


def mounts(service: str) -> dict[str, str]:
    """container path -> host path, for bind mounts of this repository."""
    out = {}
    for spec in SERVICES[service].get("volumes", []):
        parts = str(spec).split(":")
        if parts[0].startswith("./"):
            out[parts[1]] = parts[0]
    return out


def test_the_stack_has_its_services():
    assert set(SERVICES) == {"clickhouse", "migrate", "otel-collector", "grafana", "demo-app"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_images_are_pinned(service):
    spec = SERVICES[service]
    if "build" in spec:
        assert (ROOT / spec["build"]["context"] / spec["build"]["dockerfile"]).is_file()
        return
    image = spec["image"]
    assert re.fullmatch(r"[\w./-]+:\d+(\.\d+)+(@sha256:[0-9a-f]{64})?", image), f"{image} is not pinned"


def test_official_images():
    assert SERVICES["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert SERVICES["otel-collector"]["image"].startswith("otel/opentelemetry-collector-contrib:")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana:")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_mounted_files_exist(service):
    for host in mounts(service).values():
        assert (ROOT / host).exists(), host


def test_start_up_order_converges():
    assert "healthcheck" in SERVICES["clickhouse"] and "healthcheck" in SERVICES["grafana"]
    migrate = SERVICES["migrate"]
    assert migrate["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert migrate["command"][:2] == ["otel-llmcost", "migrate"] and migrate.get("restart") == "no"
    for service in ("otel-collector", "grafana"):
        assert SERVICES[service]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
        assert SERVICES[service]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["demo-app"]["depends_on"]["otel-collector"]["condition"] == "service_started"
    # the collector image is distroless, so the app waits on the health_check endpoint itself
    health = COLLECTOR["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1]
    assert env("demo-app")["LLMCOST_DEMO_WAIT_FOR"] == f"http://otel-collector:{health}/"
    # every depends_on target exists
    for spec in SERVICES.values():
        assert set(spec.get("depends_on", {})) <= set(SERVICES)


def test_collector_gets_its_config_and_publishes_its_ports():
    files = mounts("otel-collector")
    command = " ".join(SERVICES["otel-collector"]["command"])
    config_path = re.search(r"--config=(\S+)", command).group(1)
    assert files[config_path] == "./collector-config/otelcol.yaml"
    assert "./collector-config/genai-only.yaml" in files.values()
    protocols = COLLECTOR["receivers"]["otlp"]["protocols"]
    for protocol in ("grpc", "http"):
        port = int(protocols[protocol]["endpoint"].rsplit(":", 1)[1])
        assert port in ports("otel-collector")
    used = set(re.findall(r"\$\{env:(\w+)\}", (ROOT / "collector-config/otelcol.yaml").read_text()))
    assert used <= set(env("otel-collector")), used - set(env("otel-collector"))


def test_collector_writes_to_the_clickhouse_service_as_its_admin_user():
    collector = env("otel-collector")
    clickhouse = env("clickhouse")
    assert re.fullmatch(r"tcp://clickhouse:9000", collector["CLICKHOUSE_ENDPOINT"])
    assert 9000 in ports("clickhouse")
    assert collector["CLICKHOUSE_USER"] == clickhouse["CLICKHOUSE_USER"]
    assert collector["CLICKHOUSE_PASSWORD"] == clickhouse["CLICKHOUSE_PASSWORD"]


def test_migrations_target_the_database_the_collector_and_grafana_use():
    migrate = env("migrate")
    assert migrate["OTEL_EXPORTER_LLMCOST_DATABASE"] == COLLECTOR["exporters"]["clickhouse"]["database"]
    assert migrate["OTEL_EXPORTER_LLMCOST_DATABASE"] == DATASOURCE["jsonData"]["defaultDatabase"]
    dsn = default(migrate["OTEL_EXPORTER_LLMCOST_DSN"])
    user = env("clickhouse")["CLICKHOUSE_USER"]
    password = default(env("clickhouse")["CLICKHOUSE_PASSWORD"])
    assert dsn == f"http://{user}:{password}@clickhouse:8123"


def test_demo_app_exports_otlp_http_to_the_collector():
    app = env("demo-app")
    http_port = COLLECTOR["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1]
    assert app["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://otel-collector:{http_port}"
    assert app["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"  # the exporter otel-llmcost depends on
    command = SERVICES["demo-app"]["command"]
    assert command[0] == "opentelemetry-instrument"
    assert command[command.index("--traces_exporter") + 1] == "otlp"
    assert "examples/demo_app.py" in command and (ROOT / "examples" / "demo_app.py").is_file()


def test_grafana_has_the_plugin_and_the_provisioning_it_references():
    grafana = env("grafana")
    assert re.fullmatch(r"grafana-clickhouse-datasource \d+\.\d+\.\d+", grafana["GF_INSTALL_PLUGINS"])
    assert DATASOURCE["type"] == grafana["GF_INSTALL_PLUGINS"].split()[0]
    files = mounts("grafana")
    for kind in ("datasources", "dashboards", "alerting"):
        assert files[f"/etc/grafana/provisioning/{kind}"] == f"./dashboards/provisioning/{kind}"
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/llmcost.yaml").read_text())
    assert files[provider["providers"][0]["options"]["path"]] == "./dashboards"
    home = grafana["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "dashboards" / Path(home).name).is_file()


def test_grafana_reads_clickhouse_with_the_read_only_user():
    assert DATASOURCE["jsonData"]["host"] == "clickhouse"
    assert DATASOURCE["jsonData"]["port"] in ports("clickhouse")
    secret = re.search(r"\$\{?(\w+)\}?", DATASOURCE["secureJsonData"]["password"]).group(1)
    assert secret in env("grafana") and secret in env("clickhouse")
    assert env("grafana")[secret] == env("clickhouse")[secret]
    users = mounts("clickhouse")
    xml = next(host for container, host in users.items() if container.startswith("/etc/clickhouse-server/users.d/"))
    text = (ROOT / xml).read_text(encoding="utf-8")
    assert f"<{DATASOURCE['jsonData']['username']}>" in text and f'from_env="{secret}"' in text
    assert DATASOURCE["jsonData"]["username"] != env("clickhouse")["CLICKHOUSE_USER"]
