"""Client IP, request log, block list and suspicious-IP detection (nexus_backend/tracking; docs/tracking.md)."""

from __future__ import annotations

import os

from nexus_backend.infra.embedded import state_dir

from .env import env_bool, env_float, env_int, env_logging_mode, env_networks, env_proxy_ssl_header

# How many reverse proxies on this machine append to X-Forwarded-For (0: use REMOTE_ADDR, ignore the header).
# Applies to requests from a loopback peer only (nexus_backend/tracking/client_ip.py).
NEXUS_TRUSTED_PROXIES = env_int("NEXUS_TRUSTED_PROXIES", 0)
# Networks of reverse proxies elsewhere (a load balancer): a peer inside them is trusted to write X-Forwarded-For.
NEXUS_TRUSTED_PROXY_NETWORKS = env_networks("NEXUS_TRUSTED_PROXY_NETWORKS", "")
# The header a TLS-terminating proxy sets to "https": believed only behind a trusted proxy (docs/operations.md).
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("NEXUS_PROXY_SSL_HEADER", NEXUS_TRUSTED_PROXIES > 0)

NEXUS_REQUEST_LOGGING = env_logging_mode("NEXUS_REQUEST_LOGGING")  # on | off | sync
NEXUS_REQUEST_LOG_BUFFER_SECONDS = env_float("NEXUS_REQUEST_LOG_BUFFER_SECONDS", 0.25, 0.01)
NEXUS_REQUEST_LOG_FLUSH_SECONDS = env_float("NEXUS_REQUEST_LOG_FLUSH_SECONDS", 5.0, 0.5)
NEXUS_REQUEST_LOG_SPOOL_DIR = os.environ.get("NEXUS_REQUEST_LOG_SPOOL_DIR") or str(state_dir() / "spool" / "requestlog")
NEXUS_REQUEST_LOG_RETENTION_DAYS = env_int("NEXUS_REQUEST_LOG_RETENTION_DAYS", 30, 1)
NEXUS_BLOCKLIST_REFRESH_SECONDS = env_float("NEXUS_BLOCKLIST_REFRESH_SECONDS", 1.0, 0.05)
NEXUS_BLOCKLIST_MAX_AGE_SECONDS = env_float("NEXUS_BLOCKLIST_MAX_AGE_SECONDS", 60.0, 1.0)

# A rules file laid over nexus_backend/tracking/detection/rules.yaml (empty: the defaults).
NEXUS_DETECTION_RULES = os.environ.get("NEXUS_DETECTION_RULES", "").strip()
# true: findings of rules marked `block: true` also block the address for the rule's block_minutes.
NEXUS_DETECTION_AUTO_BLOCK = env_bool("NEXUS_DETECTION_AUTO_BLOCK", False)
