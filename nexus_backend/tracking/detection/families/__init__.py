"""The rule families: one module per group of attack shapes, each rule a function
``(IPStats, params, Context) -> Hit | None`` (``base.py``). ``RULES`` names them in the order reasons appear in a
finding; ``rules.yaml`` holds their parameters and scores."""

from __future__ import annotations

from collections.abc import Callable

from ..aggregate import IPStats
from .agents import (
    rule_address_rotation,
    rule_agent_rotation,
    rule_bad_user_agent,
    rule_fake_browser,
    rule_fake_crawler,
    rule_obsolete_agent,
)
from .api_abuse import rule_blind_signup, rule_vote_campaign, rule_vote_farm, rule_vote_replay
from .base import Context, Hit, requests_of
from .crawling import rule_fingerprint_burst, rule_machine_pace, rule_page_walk, rule_scraper, rule_volume
from .logins import rule_account_campaign, rule_auth_failures, rule_login_campaign
from .probes import rule_bad_request, rule_cms_probe, rule_not_found_probe, rule_payload, rule_sensitive_paths
from .spam import rule_form_spam, rule_referrer_spam, rule_spam_signature

__all__ = ["RULES", "Context", "Hit", "requests_of"]

# name -> the rule; the order is the order of reasons in a finding. Each takes the address's IPStats, its
# parameters from rules.yaml and the Context, and returns a Hit or None.
RULES: dict[str, Callable[[IPStats, dict, Context], Hit | None]] = {
    "cms_probe": rule_cms_probe,
    "payload": rule_payload,
    "sensitive_paths": rule_sensitive_paths,
    "not_found_probe": rule_not_found_probe,
    "auth_failures": rule_auth_failures,
    "login_campaign": rule_login_campaign,
    "account_campaign": rule_account_campaign,
    "bad_user_agent": rule_bad_user_agent,
    "obsolete_agent": rule_obsolete_agent,
    "fake_browser": rule_fake_browser,
    "fake_crawler": rule_fake_crawler,
    "scraper": rule_scraper,
    "agent_rotation": rule_agent_rotation,
    "address_rotation": rule_address_rotation,
    "referrer_spam": rule_referrer_spam,
    "form_spam": rule_form_spam,
    "spam_signature": rule_spam_signature,
    "bad_request": rule_bad_request,
    "volume": rule_volume,
    "fingerprint_burst": rule_fingerprint_burst,
    "vote_replay": rule_vote_replay,
    "vote_farm": rule_vote_farm,
    "vote_campaign": rule_vote_campaign,
    "blind_signup": rule_blind_signup,
    "page_walk": rule_page_walk,
    "machine_pace": rule_machine_pace,
}
