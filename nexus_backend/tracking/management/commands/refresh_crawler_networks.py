"""``manage.py refresh_crawler_networks``: fetch the crawlers' published network lists into ``crawlers/*.json``.

Each data file names its ``source`` (Google's googlebot.json, Bing's bingbot.json, ...). The command fetches every
source, checks each prefix, and rewrites the file with the new prefixes, the list's own ``creationTime`` and
today's date as ``retrieved``; the detector reads the files at its next run. Nothing is written unless every
list was fetched and checked. Offline, it stops with one line naming the list it could not fetch.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from nexus_backend.tracking.detection.rules import CRAWLERS_DIR


def fetch_prefixes(url: str, *, timeout: float) -> tuple[list[dict], str]:
    """``(prefixes, creationTime)`` of a published list; ``CommandError`` (one line) when it cannot be used."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the file's own https URL)
            doc = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CommandError(f"cannot fetch {url} ({reason}); the shipped lists stay as they are") from None
    except ValueError as exc:
        raise CommandError(f"{url} did not answer JSON ({exc})") from None
    prefixes = doc.get("prefixes") if isinstance(doc, dict) else None
    if not isinstance(prefixes, list) or not prefixes:
        raise CommandError(f"{url}: no `prefixes` list in the answer")
    out = []
    for entry in prefixes:
        value = entry.get("ipv4Prefix") or entry.get("ipv6Prefix") if isinstance(entry, dict) else None
        try:
            network = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            raise CommandError(f"{url}: {value!r} is not a network") from None
        out.append({f"ipv{network.version}Prefix": str(network)})
    return out, str(doc.get("creationTime", ""))


class Command(BaseCommand):
    help = "Refresh the crawlers' published network lists (crawlers/*.json) from their sources."

    def add_arguments(self, parser):
        parser.add_argument("--dir", default=str(CRAWLERS_DIR), help="the folder of crawler lists (default: shipped)")
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")

    def handle(self, *args, dir, timeout, **options):
        folder = Path(dir)
        files = sorted(folder.glob("*.json"))
        if not files:
            raise CommandError(f"--dir: no crawler lists (*.json) in {folder}")
        updated = []
        for path in files:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                source = doc["source"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CommandError(f"{path}: not a crawler list with a `source` ({exc})") from None
            prefixes, created = fetch_prefixes(source, timeout=timeout)
            doc.update(prefixes=prefixes, creationTime=created, retrieved=datetime.now(UTC).date().isoformat())
            doc["provenance"] = f"fetched from {source} by manage.py refresh_crawler_networks"
            updated.append((path, doc))
        for path, doc in updated:
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            tmp.replace(path)
            self.stdout.write(f"{path.name}: {len(doc['prefixes'])} prefixes (list of {doc['creationTime'] or '?'})")
