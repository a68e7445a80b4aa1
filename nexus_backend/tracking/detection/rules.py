"""The detection rules: a YAML file of named rules and their parameters, loaded and checked into a ``RuleSet``.

The default file is ``rules.yaml`` beside this module; ``settings.NEXUS_DETECTION_RULES`` (env
``NEXUS_DETECTION_RULES``) or ``--rules FILE`` point at another one. A file only has to say what it changes: it is
laid over the defaults, and every name and type is checked against them, so a typo is a one-line error
(``RulesError``) instead of a rule that silently never fires.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RULES_FILE = Path(__file__).with_name("rules.yaml")
COMMON_KEYS = {"enabled": bool, "score": float, "block": bool, "block_minutes": int}
TOP_KEYS = {"version", "window_seconds", "threshold", "whitelist", "static_paths", "api_paths", "site", "rules"}
CRAWLERS_DIR = Path(__file__).with_name("crawlers")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, the rule and the parameter."""


def _read_yaml(path: Path) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(f"{path}: no such rules file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read the rules file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RulesError(f"{path}: not valid YAML{where} ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(f"{path}: a rules file is a mapping (window_seconds, threshold, rules: ...)")
    return data


def _check_type(where: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RulesError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int | float) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RulesError(f"{where} must be a number, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            if not value.is_integer():
                raise RulesError(f"{where} must be a whole number, got {value!r}")
            value = int(value)
        if value < 0:
            raise RulesError(f"{where} must not be negative, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise RulesError(f"{where} must be a list, got {value!r}")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise RulesError(f"{where} must be a mapping, got {value!r}")
        return value
    if isinstance(default, str) and not isinstance(value, str):
        raise RulesError(f"{where} must be text, got {value!r}")
    return value


def _merge(base: dict, override: dict, source: str) -> dict:
    """``override`` laid over ``base`` (the defaults), names and types checked."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key not in TOP_KEYS:
            raise RulesError(f"{source}: unknown key {key!r} (known: {', '.join(sorted(TOP_KEYS))})")
        if key == "rules":
            if not isinstance(value, dict):
                raise RulesError(f"{source}: rules must be a mapping of rule name -> parameters")
            for name, params in value.items():
                if name not in base["rules"]:
                    raise RulesError(f"{source}: unknown rule {name!r} (known: {', '.join(base['rules'])})")
                if params is None:
                    continue
                if not isinstance(params, dict):
                    raise RulesError(f"{source}: rule {name!r} must be a mapping of parameters")
                defaults = base["rules"][name]
                for param, param_value in params.items():
                    default = defaults.get(param, COMMON_KEYS.get(param, type(None))())
                    if param not in defaults and param not in COMMON_KEYS:
                        known = ", ".join(sorted(set(defaults) | set(COMMON_KEYS)))
                        raise RulesError(f"{source}: rule {name!r} has no parameter {param!r} (known: {known})")
                    merged["rules"][name][param] = _check_type(f"{source}: {name}.{param}", param_value, default)
        elif key == "site":
            if not isinstance(value, dict):
                raise RulesError(f"{source}: site must be a mapping of parameters")
            for param, param_value in value.items():
                if param not in base["site"]:
                    known = ", ".join(sorted(base["site"]))
                    raise RulesError(f"{source}: site has no parameter {param!r} (known: {known})")
                merged["site"][param] = _check_type(f"{source}: site.{param}", param_value, base["site"][param])
        else:
            merged[key] = _check_type(f"{source}: {key}", value, base[key])
    return merged


def _compile(where: str, patterns: list, flags: int = 0) -> re.Pattern:
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise RulesError(f"{where}: a pattern must be text, got {pattern!r}")
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns) if patterns else r"(?!x)x", flags)
    except re.error as exc:
        raise RulesError(f"{where}: bad regular expression ({exc})") from None


@dataclass(frozen=True)
class Crawler:
    """A crawler whose operator publishes its networks (``crawlers/<name>.json``, the operator's own format)."""

    name: str
    agent: re.Pattern
    networks: tuple
    rdns: tuple[str, ...]  # host name suffixes for forward-confirmed reverse DNS
    source: str
    retrieved: str


def load_crawlers(folder: Path = CRAWLERS_DIR) -> dict[str, Crawler]:
    """Every ``*.json`` in ``folder``: ``{crawler, agent, source, retrieved, rdns, prefixes: [{ipv4Prefix}, ...]}``
    (``ipv6Prefix`` too; read again only when a file changes: a parameter sweep builds many rulesets)."""
    files = sorted(Path(folder).glob("*.json"))
    return _load_crawlers(tuple((str(p), p.stat().st_mtime_ns) for p in files))


@lru_cache(maxsize=8)
def _load_crawlers(files: tuple) -> dict[str, Crawler]:
    crawlers = {}
    for name, _ in files:
        path = Path(name)
        where = path.name
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            prefixes = [p.get("ipv4Prefix") or p.get("ipv6Prefix") for p in doc["prefixes"]]
            crawlers[doc["crawler"]] = Crawler(
                name=doc["crawler"],
                agent=_compile(where, [doc["agent"]], re.IGNORECASE),
                networks=_networks(where, prefixes),
                rdns=tuple(doc.get("rdns", ())),
                source=doc.get("source", ""),
                retrieved=doc.get("retrieved", ""),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RulesError(f"{path}: not a crawler network list ({exc})") from None
    return crawlers


def _admin_path() -> str:
    try:
        from django.conf import settings

        return str(settings.NEXUS_ADMIN_PATH).strip("/") or "admin"
    except Exception:  # outside Django (a notebook without settings): the default
        return "admin"


def _networks(where: str, values: list) -> tuple:
    try:
        return tuple(ipaddress.ip_network(str(v), strict=False) for v in values)
    except ValueError as exc:
        raise RulesError(f"{where}: {exc}") from None


@dataclass
class RuleSet:
    """The checked rules: ``data`` is the merged mapping (what ``dump`` writes back)."""

    data: dict
    source: str = "defaults"
    compiled: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        d = self.data
        if not 0 < d["threshold"] <= 1:
            raise RulesError(f"{self.source}: threshold must be in (0, 1], got {d['threshold']!r}")
        if d["window_seconds"] < 60:
            raise RulesError(f"{self.source}: window_seconds must be at least 60, got {d['window_seconds']!r}")
        for name, rule in d["rules"].items():
            if not 0 <= rule.get("score", 0) <= 1:
                raise RulesError(f"{self.source}: {name}.score must be between 0 and 1, got {rule['score']!r}")
        r = d["rules"]
        c = self.compiled
        admin = re.escape(_admin_path())
        where = self.source

        def paths(name: str, patterns: list) -> re.Pattern:
            patterns = [p.replace("{admin}", admin) if isinstance(p, str) else p for p in patterns]
            return _compile(f"{where}: {name}", patterns, re.IGNORECASE)

        c["admin"] = admin
        c["whitelist"] = _networks(f"{where}: whitelist", d["whitelist"])
        c["static"] = paths("static_paths", d["static_paths"])
        c["api"] = paths("api_paths", d["api_paths"])
        c["sensitive"] = paths("sensitive_paths.paths", r["sensitive_paths"]["paths"])
        families = r["cms_probe"]["families"]
        for name, patterns in families.items():
            if not isinstance(patterns, list):
                raise RulesError(f"{where}: cms_probe.families.{name} must be a list of patterns")
        c["families"] = {name: paths(f"cms_probe.families.{name}", p) for name, p in families.items()}
        c["auth"] = paths("auth_failures.paths", r["auth_failures"]["paths"])
        c["actions"] = paths("fingerprint_burst.actions", r["fingerprint_burst"]["actions"])
        c["spam_signature"] = paths("spam_signature.paths", r["spam_signature"]["paths"])
        c["scanner"] = re.compile("|".join(re.escape(s.lower()) for s in r["bad_user_agent"]["scanners"]) or r"(?!x)x")
        c["benign_hosts"] = _compile(f"{where}: site.benign_referrer_hosts", d["site"]["benign_referrer_hosts"])
        words = r["referrer_spam"]["spam_words"]
        c["spam_words"] = re.compile("|".join(re.escape(w.lower()) for w in words) or r"(?!x)x")
        c["crawlers"] = load_crawlers()

    # ------------------------------------------------------------------ access

    @property
    def window_seconds(self) -> int:
        return int(self.data["window_seconds"])

    @property
    def threshold(self) -> float:
        return float(self.data["threshold"])

    def rule(self, name: str) -> dict:
        return self.data["rules"][name]

    def enabled(self, name: str) -> bool:
        return bool(self.data["rules"][name].get("enabled", True))

    @property
    def names(self) -> list[str]:
        return list(self.data["rules"])

    @cached_property
    def fingerprint(self) -> str:
        """Parameters that change what is aggregated (not just how it is judged): partial aggregates made with
        one ruleset can be judged with another that has the same fingerprint (the notebook's parameter sweep).
        Patterns and lists classify requests; numbers only judge them."""
        r = self.data["rules"]
        keys = (
            self.data["window_seconds"],
            self.data["static_paths"],
            self.data["api_paths"],
            self.compiled["admin"],
            {name: {k: v for k, v in params.items() if isinstance(v, list | dict)} for name, params in r.items()},
            {name: crawler.agent.pattern for name, crawler in self.compiled["crawlers"].items()},
        )
        return repr(keys)

    def with_params(self, overrides: dict[str, Any] | None = None, **kwargs: Any) -> RuleSet:
        """A copy with ``{"threshold": 0.6, "volume.max_requests": 200, "cms_probe.enabled": False}`` applied."""
        patch: dict = {}
        for key, value in {**(overrides or {}), **kwargs}.items():
            if "." in key:
                rule, param = key.split(".", 1)
                patch.setdefault("rules", {}).setdefault(rule, {})[param] = value
            else:
                patch[key] = value
        return RuleSet(_merge(self.data, patch, "overrides"), source=f"{self.source} + overrides")

    def only(self, *names: str) -> RuleSet:
        """A copy with every rule but ``names`` disabled."""
        return self.with_params({f"{n}.enabled": n in names for n in self.names})

    def dump(self, path: str | Path, *, comment: str = "") -> Path:
        path = Path(path)
        header = "".join(f"# {line}\n" for line in comment.splitlines())
        path.write_text(header + yaml.safe_dump(self.data, sort_keys=False, width=120), encoding="utf-8")
        return path


def _defaults() -> dict:
    data = _read_yaml(DEFAULT_RULES_FILE)
    missing = TOP_KEYS - set(data)
    if missing:
        raise RulesError(f"{DEFAULT_RULES_FILE}: missing {', '.join(sorted(missing))}")
    return data


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rules in ``path`` laid over the defaults; ``None``: ``settings.NEXUS_DETECTION_RULES`` or the defaults."""
    if path is None:
        from django.conf import settings

        path = getattr(settings, "NEXUS_DETECTION_RULES", "") or None
    defaults = _defaults()
    if path is None or Path(path).resolve() == DEFAULT_RULES_FILE.resolve():
        return RuleSet(defaults, source=str(DEFAULT_RULES_FILE.name))
    return RuleSet(_merge(defaults, _read_yaml(Path(path)), str(path)), source=str(path))
