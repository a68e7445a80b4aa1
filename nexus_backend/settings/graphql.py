"""GraphQL (nexus_backend/graphql_api.py): query limits, GraphiQL and introspection."""

from __future__ import annotations

from .env import PRODUCTION, env_bool, env_int

# Deeper, more aliased or longer queries are refused before they run.
NEXUS_GRAPHQL_MAX_DEPTH = env_int("NEXUS_GRAPHQL_MAX_DEPTH", 8, 1)
NEXUS_GRAPHQL_MAX_ALIASES = env_int("NEXUS_GRAPHQL_MAX_ALIASES", 15, 1)
NEXUS_GRAPHQL_MAX_TOKENS = env_int("NEXUS_GRAPHQL_MAX_TOKENS", 2000, 10)
# GraphiQL keeps bearer tokens in the browser, and introspection hands out the whole schema: both on in
# development, off in production unless set (introspection follows NEXUS_GRAPHIQL unless set on its own).
NEXUS_GRAPHIQL = env_bool("NEXUS_GRAPHIQL", not PRODUCTION)
NEXUS_GRAPHQL_INTROSPECTION = env_bool("NEXUS_GRAPHQL_INTROSPECTION", NEXUS_GRAPHIQL)
