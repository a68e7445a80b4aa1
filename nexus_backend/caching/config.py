"""The caching app's switches, read from ``settings.NEXUS_CACHE`` (see settings/caching.py).

``get_config()`` is what every call reads (cached; reset when a test overrides the settings).
``configured(...)`` changes it for a block of code in this process — notebooks, the workload driver and tests use
it to compare strategies, TTLs or cache on/off without editing settings::

    with configured(invalidation="ttl", ttl={"poll_results": 0.5}):
        run_workload(...)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from django.conf import settings
from django.core.signals import setting_changed

#: precise: a write bumps the versions of exactly what it changed (the default).
#: global: any write bumps the epoch, dropping every entry (simple, and the hit ratio shows what it costs).
#: ttl: writes invalidate nothing; entries live until their TTL (the classic mistake: stale reads).
INVALIDATION_STRATEGIES = ("precise", "global", "ttl")


@dataclass(frozen=True)
class CacheConfig:
    enabled: bool = True  # false: every read computes from the database (X-Cache: off)
    alias: str = "default"  # the django-redis cache alias (settings.CACHES) the app talks to
    invalidation: str = "precise"
    ttl: Mapping[str, float] = field(default_factory=dict)  # per-namespace overrides of keys.NAMESPACES
    retry_after: float = 5.0  # after a Redis error, serve from the database this long before trying Redis again
    lock_ttl: float = 5.0  # how long one recomputation may hold a key's lock
    lock_wait: float = 5.0  # how long the other readers wait for it before computing themselves

    def __post_init__(self):
        if self.invalidation not in INVALIDATION_STRATEGIES:
            raise ValueError(
                f"NEXUS_CACHE invalidation must be one of {', '.join(INVALIDATION_STRATEGIES)}, "
                f"got {self.invalidation!r}"
            )
        object.__setattr__(self, "ttl", MappingProxyType(dict(self.ttl)))
        for name in ("retry_after", "lock_ttl", "lock_wait"):
            if getattr(self, name) < 0:
                raise ValueError(f"NEXUS_CACHE {name} must be >= 0")


_lock = threading.Lock()
_cached: CacheConfig | None = None
_overrides: list[dict] = []
#: Called by :func:`reset`, after the configuration: what other modules derived from it (``keys``'s roots).
_reset_hooks: list[Callable[[], None]] = []


def _from_settings() -> CacheConfig:
    raw = dict(getattr(settings, "NEXUS_CACHE", {}) or {})
    fields = {k.lower(): v for k, v in raw.items()}
    for changes in _overrides:
        fields.update(changes)
    return CacheConfig(**fields)


def get_config() -> CacheConfig:
    global _cached
    config = _cached
    if config is None:
        with _lock:
            config = _cached = _from_settings()
    return config


def reset() -> None:
    global _cached
    with _lock:
        _cached = None
    for hook in _reset_hooks:
        hook()


def on_reset(hook: Callable[[], None]) -> None:
    """Call ``hook`` whenever the configuration is reset (a ``configured`` block, a changed setting)."""
    if hook not in _reset_hooks:
        _reset_hooks.append(hook)


@contextlib.contextmanager
def configured(**changes) -> Iterator[CacheConfig]:
    """Change the configuration for this process inside the block (all threads see it). Nestable."""
    unknown = set(changes) - set(CacheConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown cache setting(s): {', '.join(sorted(unknown))}")
    if "ttl" in changes:  # merge per-namespace TTLs with the ones already in force
        changes = {**changes, "ttl": {**get_config().ttl, **changes["ttl"]}}
    replace(get_config(), **changes)  # validate before installing
    _overrides.append(changes)
    reset()
    try:
        yield get_config()
    finally:
        del _overrides[next(i for i, c in enumerate(_overrides) if c is changes)]  # this block's, by identity
        reset()


def _on_setting_changed(*, setting, **kwargs) -> None:
    if setting in ("NEXUS_CACHE", "CACHES"):
        reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="nexus-caching-config")
