"""Writes for detection: run the detector over a window of ``RequestLog`` and upsert ``SuspiciousIP``.

A finding's address is an address group (``client_ip.address_group``): an IPv4 address, or an IPv6 /64 in CIDR
text, which is why ``SuspiciousIP.ip_address`` is a ``NetworkField`` (PostgreSQL ``cidr``)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from nexus_backend.core.exceptions import DomainError

from ..models import BlockedIP
from .aggregate import Aggregator
from .detector import Finding, account_failures, aggregate_request_log, judge
from .rules import RuleSet, load_rules

logger = logging.getLogger(__name__)

# One statement for every finding. Re-running a window writes nothing (the WHERE clause); a later window updates
# the row (rules united, highest score, latest evidence, one more window); an earlier window only widens it.
UPSERT = """
INSERT INTO tracking_suspiciousip AS s
    (ip_address, reason, rules, score, evidence, first_seen, last_seen, window_start, window_end, windows,
     created_at, updated_at)
SELECT x.ip::cidr, x.reason, ARRAY(SELECT jsonb_array_elements_text(x.rules)), x.score, x.evidence,
       to_timestamp(x.first_seen), to_timestamp(x.last_seen), to_timestamp(x.window_start),
       to_timestamp(x.window_end), 1, now(), now()
FROM jsonb_to_recordset(%s::jsonb) AS x(ip text, reason text, rules jsonb, score double precision, evidence jsonb,
     first_seen double precision, last_seen double precision, window_start bigint, window_end bigint)
ON CONFLICT (ip_address) DO UPDATE SET
    rules = ARRAY(SELECT DISTINCT r FROM unnest(s.rules || EXCLUDED.rules) AS r ORDER BY r),
    score = GREATEST(s.score, EXCLUDED.score),
    reason = CASE WHEN EXCLUDED.window_start >= s.window_start THEN EXCLUDED.reason ELSE s.reason END,
    evidence = CASE WHEN EXCLUDED.window_start >= s.window_start THEN EXCLUDED.evidence ELSE s.evidence END,
    first_seen = LEAST(s.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen),
    windows = s.windows + (EXCLUDED.window_start > s.window_start)::int,
    window_start = GREATEST(s.window_start, EXCLUDED.window_start),
    window_end = GREATEST(s.window_end, EXCLUDED.window_end),
    updated_at = now()
WHERE EXCLUDED.window_start > s.window_start
   OR NOT (s.rules @> EXCLUDED.rules)
   OR EXCLUDED.score > s.score
   OR EXCLUDED.first_seen < s.first_seen
   OR EXCLUDED.last_seen > s.last_seen
   OR (EXCLUDED.window_start = s.window_start AND EXCLUDED.evidence IS DISTINCT FROM s.evidence)
"""


@dataclass
class DetectResult:
    window_start: str
    window_end: str
    addresses: int  # distinct (window, address) pairs in the window
    tripped: int  # tripped at least one rule
    flagged: int  # reached the threshold
    written: int  # SuspiciousIP rows inserted or changed
    blocked: int
    flagged_ips: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def last_window(*, now: datetime | None = None, window_seconds: int) -> tuple[datetime, datetime]:
    """The last complete window before ``now``, aligned to multiples of ``window_seconds`` since the epoch."""
    now = now or timezone.now()
    end_ts = int(now.timestamp()) // window_seconds * window_seconds
    end = datetime.fromtimestamp(end_ts, tz=UTC)
    return end - timedelta(seconds=window_seconds), end


@transaction.atomic
def suspicious_ip_upsert(*, findings: list[Finding]) -> int:
    """Insert or update one ``SuspiciousIP`` per flagged finding, in one statement. Returns rows written."""
    latest: dict[str, Finding] = {}
    for f in findings:  # one row per address (ON CONFLICT cannot touch a row twice): its latest window
        if f.flagged and (f.ip not in latest or f.window_start > latest[f.ip].window_start):
            latest[f.ip] = f
    rows = [
        {
            "ip": f.ip,
            "reason": f.reason,
            "rules": sorted(f.rules),
            "score": f.score,
            "evidence": f.evidence,
            "first_seen": f.first_seen,
            "last_seen": f.last_seen,
            "window_start": f.window_start,
            "window_end": f.window_end,
        }
        for f in latest.values()
    ]
    if not rows:
        return 0
    with connection.cursor() as cur:
        cur.execute(UPSERT, [json.dumps(rows)])
        return cur.rowcount


def suspicious_ip_autoblock(*, findings: list[Finding], now: datetime | None = None) -> int:
    """Temporary blocks (the block-list service) for flagged findings whose rules are marked ``block``.

    A block never shortens a longer or permanent one; its expiry is counted from the window's end, so running
    the same window again sets the same expiry. Returns how many blocks were made or extended."""
    from ..services import blocked_ip_block

    now = now or timezone.now()
    wanted: dict[str, tuple[datetime, Finding]] = {}
    for f in findings:
        if f.flagged and f.block_minutes:
            until = datetime.fromtimestamp(f.window_end, tz=UTC) + timedelta(minutes=f.block_minutes)
            if until > now and until > wanted.get(f.ip, (now, None))[0]:  # one address, several windows: the latest
                wanted[f.ip] = (until, f)
    if not wanted:
        return 0
    existing = dict(BlockedIP.objects.filter(ip_address__in=list(wanted)).values_list("ip_address", "expires_at"))
    done = 0
    for ip, (until, f) in sorted(wanted.items()):
        if ip in existing and (existing[ip] is None or existing[ip] >= until):
            continue
        try:
            blocked_ip_block(ip_address=ip, reason=f"auto: {' '.join(f.rules)}", expires_at=until)
        except DomainError as exc:
            logger.warning("detection: could not block %s: %s", ip, exc)
            continue
        done += 1
    return done


def served_families(*, aggregator: Aggregator) -> set[str]:
    """Probe families this site runs, from its URL configuration: a path of the family requested in the window
    resolves to a view (the API's catch-all 404 does not count). Known-probe paths that resolve nowhere stay
    strong evidence from the first request."""
    from django.urls import Resolver404, resolve

    from nexus_backend.core.exceptions import json_404

    out: set[str] = set()
    for path in sorted({p for s in aggregator.stats.values() for p in s.cms_paths}):
        family = aggregator.path_class(path).family
        if family in out:
            continue
        try:
            match = resolve(path)
        except Resolver404:
            continue
        if match.func is not json_404:
            out.add(family)
    return out


def detect_window(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    rules: RuleSet | None = None,
    auto_block: bool | None = None,
) -> DetectResult:
    """Run the detector over ``RequestLog`` in ``[start, end)`` (default: the last complete window) and upsert."""
    rules = rules or load_rules()
    if start is None or end is None:
        start, end = last_window(now=end, window_seconds=rules.window_seconds)
    aggregator = aggregate_request_log(start=start, end=end, rules=rules)
    accounts = {}
    if rules.enabled("account_campaign"):
        accounts = account_failures(start=start, end=end, aggregator=aggregator)
    findings = judge(aggregator, rules, served_families=served_families(aggregator=aggregator), accounts=accounts)
    written = suspicious_ip_upsert(findings=findings)
    if auto_block is None:
        auto_block = settings.NEXUS_DETECTION_AUTO_BLOCK
    blocked = suspicious_ip_autoblock(findings=findings) if auto_block else 0
    flagged = sorted({f.ip for f in findings if f.flagged})
    result = DetectResult(
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        addresses=len(aggregator.stats),
        tripped=len(findings),
        flagged=len(flagged),
        written=written,
        blocked=blocked,
        flagged_ips=flagged,
    )
    logger.info(
        "detection %s..%s: %d addresses, %d flagged, %d rows written, %d blocked",
        start,
        end,
        result.addresses,
        result.flagged,
        written,
        blocked,
    )
    return result
