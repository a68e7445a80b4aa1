"""docker-compose.yml exposes nothing but the web port, with no known secret (findings: JupyterLab on every
interface with the token ``nexus``; RabbitMQ's management UI published with nexus/nexus; a default SECRET_KEY).

There is no Docker engine here, so the file is read as ``docker compose config`` would: the ``${VAR...}`` forms
interpolated from an environment, then every published port, user, memory limit and secret checked."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.security.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
PUBLIC_WEB = ("proxy", 8000)  # the only service and port published on every interface
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD", "JUPYTER_TOKEN")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` (the forms this file uses)."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name)
        if op in (":?", "?") and not value:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and not value:
            return arg
        return value or ""

    return INTERPOLATION.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def _walk(node, env: dict[str, str]):
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def config(env: dict[str, str]) -> dict:
    """The services as `docker compose config` resolves them: YAML first, then each value interpolated."""
    return _walk(yaml.safe_load(COMPOSE.read_text()), env)["services"]


FRESH = {name: f"fresh-{name.lower()}-value" for name in SECRETS}


def published(service: dict) -> list[tuple[str, int]]:
    """(host address, host port) of each published port; short syntax only, an address-less one is 0.0.0.0."""
    out = []
    for entry in service.get("ports") or []:
        parts = str(entry).split("/")[0].split(":")
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((host_ip, int(parts[-2] if len(parts) > 1 else parts[-1])))
    return out


def test_compose_refuses_to_start_without_the_generated_secrets():
    for name in SECRETS:
        with pytest.raises(MissingVariable, match=name):
            config({k: v for k, v in FRESH.items() if k != name})


def test_nothing_but_the_web_port_is_published_on_a_public_interface():
    services = config(FRESH)
    public = [
        (name, port) for name, service in services.items() for ip, port in published(service) if ip != "127.0.0.1"
    ]
    assert public == [PUBLIC_WEB]
    assert published(services["jupyter"]) == [("127.0.0.1", 8888)]
    assert published(services["rabbitmq"]) == []  # no management UI on any interface
    assert not any(port == 15672 for service in services.values() for _, port in published(service))


def test_jupyter_uses_the_generated_token_and_holds_no_signing_secrets():
    jupyter = config(FRESH)["jupyter"]
    assert f"--IdentityProvider.token={FRESH['JUPYTER_TOKEN']}" in jupyter["command"]
    assert "SECRET_KEY" not in jupyter["environment"] and "NEXUS_METRICS_TOKEN" not in jupyter["environment"]


def test_every_secret_in_the_services_comes_from_env():
    services = config(FRESH)
    for name, service in services.items():
        env = service.get("environment") or {}
        for var, value in env.items():
            if re.search(r"KEY|SECRET|TOKEN|PASSWORD|PASS$|AUTH", var) and value:
                assert value in FRESH.values(), f"{name}: {var} is not one of the generated secrets"
            if "://" in str(value) and "@" in str(value):
                password = str(value).split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
                assert password in FRESH.values(), f"{name}: {var} carries a password that is not generated"
    redis = services["redis"]["command"]
    assert redis[redis.index("--requirepass") + 1] == FRESH["REDIS_PASSWORD"]
    # Nothing in the file itself can stand in for a secret: no `${SECRET:-default}`.
    for match in INTERPOLATION.finditer(COMPOSE.read_text()):
        if match.group(1) in SECRETS:
            assert match.group(2) == ":?", f"${{{match.group(1)}}} must be required (:?), never defaulted"


def test_every_service_runs_as_non_root_with_a_memory_limit():
    for name, service in config(FRESH).items():
        user = str(service.get("user", "root")).split(":")[0]
        assert user not in ("root", "0", ""), f"{name} runs as root"
        assert re.fullmatch(r"\d+[mg]", str(service.get("mem_limit", ""))), f"{name} has no memory limit"
        assert "no-new-privileges:true" in service.get("security_opt", []), name


def test_redis_has_a_memory_ceiling_below_its_container_limit():
    redis = config(FRESH)["redis"]
    command = redis["command"]
    ceiling = command[command.index("--maxmemory") + 1]
    assert re.fullmatch(r"\d+mb", ceiling) and int(ceiling[:-2]) < int(redis["mem_limit"][:-1])
    assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"


def test_the_web_app_is_reached_only_through_the_buffering_proxy():
    services = config(FRESH)
    assert published(services["web"]) == []
    proxy_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_pass http://web:8000;" in proxy_conf
    for directive in ("client_header_timeout", "client_body_timeout", "proxy_request_buffering on", "limit_conn "):
        assert directive in proxy_conf
    mounts = services["proxy"]["volumes"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in mounts
    # nginx is another container, never a loopback peer: the app trusts its fixed address, and nothing else.
    proxy_address = services["proxy"]["networks"]["default"]["ipv4_address"]
    assert services["web"]["environment"]["NEXUS_TRUSTED_PROXY_NETWORKS"] == proxy_address
    assert "NEXUS_TRUSTED_PROXIES" not in services["web"]["environment"]
