"""Attack payloads in a request target (its query string above all): SQL injection, cross-site scripting, path
traversal and file inclusion, shell commands, PHP code and wrappers, Java/template injection.

The shapes are those of the OWASP Core Rule Set's request rules (930 LFI, 931 RFI, 932 RCE, 933 PHP, 941 XSS,
942 SQLi, 944 Java) and CrowdSec's http-sqli-probing, http-xss-probing and http-path-traversal-probing scenarios,
cut down to what a scanner's probe carries: each pattern requires *syntax* (``' or 1=1``, ``union ... select``,
``<script``, ``onerror=``, ``../`` twice, ``;wget http``), never a bare word, so a search for "select a union"
or "o'brien's" is not a payload.

``target_path(target)`` is the one normalisation every source goes through (log parsers, the request-log
middleware, the aggregator for records made in memory): the query string is cut, as ``RequestLog.path`` always
stored it, *unless* it carries a payload; then ``path?query`` is kept, so the rule sees it and its evidence shows
which request it was. ``payload_family(target)`` names the family ("" none).
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus

MAX_TARGET = 2048  # RequestLog.path's column size

_SEP = r"(?:\s|/\*.*?\*/|\(|#[^\n]*\n|--[^\n]*\n)+"  # what SQL accepts between two keywords
FAMILIES: dict[str, list[str]] = {
    "sqli": [
        rf"\bunion{_SEP}(?:all{_SEP}|distinct{_SEP})?select\b",
        r"['\"`)]\s*(?:or|and|xor|\|\||&&)\s*\(?\s*['\"]?\w+['\"]?\s*(?:=|like\b)",  # ' or 1=1, " or "a"="a
        r"\b(?:or|and)\s+\(?\s*(\d+)\s*=\s*\(?\s*\1\b",  # 1 or 1=1, and 2=2
        r"['\"\d)]\s*;\s*(?:drop\s+(?:table|database)|delete\s+from|insert\s+into|update\s+\w+\s+set|truncate\s"
        r"|shutdown\b|exec(?:ute)?\s+(?:xp_|sp_|master)|declare\s+@)",  # stacked queries
        r"\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d|\bwaitfor\s+delay\s+'",  # time-based blind
        r"\b(?:information_schema|sysobjects|pg_catalog|xp_cmdshell|mysql\.user)\b",
        r"\b(?:load_file|extractvalue|updatexml|group_concat|concat_ws)\s*\(|\binto\s+(?:out|dump)file\b",
        r"\(\s*select\s+[\w*@(]+.{0,60}\bfrom\b|\border\s+by\s+\d+\s*(?:--|#|/\*)",
        r"\d['\"]\)*\s*(?:--|#|/\*)",  # 1'-- closing a quoted number with a comment
    ],
    "xss": [
        r"<\s*/?\s*(?:script|iframe|svg|object|embed|applet|meta|base|math|details|marquee|body|img|input|style|video"
        r"|audio|frameset|isindex|xss)\b",
        r"\bon(?:error|load|mouseover|mouseenter|focus|click|toggle|begin|animationstart|pointerenter|wheel)\s*=",
        r"\b(?:javascript|vbscript|livescript)\s*:\s*(?:alert|prompt|confirm|eval|void|document|window|location|fetch)",
        r"\bdocument\.(?:cookie|domain|write)\b|\b(?:alert|prompt|confirm)\s*[(`]\s*['\"\d`/]|fromcharcode\s*\(",
        r"\bdata:text/html\b|\bexpression\s*\(",
    ],
    "traversal": [
        r"(?:\.\.[/\\;]){2,}|(?:\.\.;?[/\\]).*\.\.",  # ../../ (CrowdSec path-traversal), ..;/ (Tomcat)
        # a system file as a whole parameter value (or the path): "what is /etc/hosts" in a search box is not
        r"(?:^|[=\n])\s*(?:file:/*|[a-z]:)?[/\\]*(?:etc/(?:passwd|shadow|hosts|group|issue)|proc/self/(?:environ|cmdline|fd)"
        r"|windows[/\\]+(?:win|system)\.ini|boot\.ini)",
        r"%c0%ae|%c0%af|%e0%80%af|%c1%9c|%252e%252e",  # overlong / double encodings (read raw)
        r"(?:^|[=&])\s*(?:file|gopher|dict|ldap)://",
        r"(?:^|[=&])\s*(?:https?|ftp)://(?:\d{1,3}\.){3}\d{1,3}[/:][^&]*\?*(?:&|$)",  # remote include from an IP
        r"(?:^|[=&])\s*(?:https?|ftp)://[^&\s]+\?{1,2}$",  # a remote script, query cut with "?" (CRS 931)
    ],
    "shell": [
        # a command after a shell separator (not "&": it separates parameters; "food;shopping" is no "; sh")
        r"(?:[;|`]|\$\(|&&)\s*(?:(?:wget|curl|tftp|busybox|ncat?|bash|sh|chmod|uname|id|whoami|nslookup|powershell)\b"
        r"|cd\s+/|rm\s+-|cat\s+/|ping\s+-|echo\s+\S+\s*[|>]|python[23]?\s+-c|perl\s+-e)",
        r"\b(?:wget|curl)\s+(?:-\S+\s+)*(?:https?|ftp)://|\bcd\s+/(?:tmp|var/run|dev/shm)\b|/bin/(?:ba|z|da)?sh\b",
        r"\bchmod\s+(?:\+x|[0-7]{3,4})\s|\brm\s+-rf\s|\$\{ifs\}|\$ifs\b",
        r"\b(?:cmd|exec|execute|command|shell|run|ping|system)=[^&]*(?:[;|`]|\$\(|&&)",
    ],
    "php": [
        r"\b(?:php|phar|expect|zip|glob)://|\bdata://text/plain",
        r"\b(?:allow_url_include|auto_prepend_file|auto_append_file|disable_functions|safe_mode|open_basedir)\b",
        r"\b(?:call_user_func(?:_array)?|invokefunction|file_put_contents|base64_decode|shell_exec|passthru|popen"
        r"|proc_open|assert|eval|system|phpinfo)\s*\(|\\think\\|invokefunction|call_user_func",
        r"<\?php|\$_(?:get|post|request|server|cookie)\[|die\(\s*@?md5\(|\bxdebug_session_start\b",
    ],
    "java": [
        r"\$\{\s*(?:jndi|\$\{|lower:|upper:|env:|sys:|java:|date:|::-|base64:)",  # log4shell and its obfuscations
        r"class\.module\.classloader|\bjava\.lang\.(?:runtime|processbuilder)|#_memberaccess|@ognl|%\{\s*\(?#",
        r"\{\{\s*\d+\s*\*\s*\d+\s*\}\}|\$\{\s*\d+\s*\*\s*\d+\s*\}|#\{\s*\d+\s*\*\s*\d+\s*\}",  # template injection
    ],
}
_RAW = re.compile(r"%c0%ae|%c0%af|%e0%80%af|%c1%9c|%252e%252e", re.IGNORECASE)
_COMPILED = [(name, re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE | re.DOTALL)) for name, patterns
             in FAMILIES.items()]  # fmt: skip
# A target without any of these characters/words carries no payload: most are skipped with one search.
_HINT = re.compile(r"[<>'\"`;|$(){}\\]|\.\.|%|://|\b(?:union|or|and|sleep|cd|wget|curl|rm|chmod|passwd|alert)\b|xdebug|classloader|etc/|proc/self|\.ini",
                   re.IGNORECASE)  # fmt: skip


def _decoded(text: str, query: bool) -> str:
    """``text`` percent-decoded twice (double encoding), ``+`` as a space in a query string."""
    once = unquote_plus(text, errors="replace") if query else unquote(text, errors="replace")
    return unquote(once, errors="replace") if "%" in once else once


def payload_family(target: str) -> str:
    """The payload family a request target (path, ``?``, query string) carries, "" none."""
    if not _HINT.search(target):
        return ""
    if _RAW.search(target):
        return "traversal"
    path, sep, query = target.partition("?")
    text = _decoded(path, False) + ("\n" + _decoded(query, True) if sep else "")
    for name, regex in _COMPILED:
        if regex.search(text):
            return name
    return ""


# What scanners spray into *every* header, the Referer included: Log4Shell's ``${jndi:...}`` and its obfuscations
# (OWASP CRS 944150 reads all request headers for it; so does CrowdSec's CVE-2021-44228 scenario) and Shellshock's
# ``() {`` function definition, which bash imports only at the very start of a value (CRS 932170: ``^\(\s*\)\s+{``;
# a search for "function() {" in a referrer's query is not one). A browser's Referer is a URL that starts with its
# scheme; SQL and script shapes are left out: search-engine referrers carry people's queries.
_HEADER = re.compile(
    r"\$\{\s*(?:jndi|\$\{|lower:|upper:|env:|sys:|java:|::-|base64:)|^\s*(\(\s*\)\s*\{)", re.IGNORECASE
)


def header_payload(value: str) -> str:
    """The payload family a header value (a Referer) carries: "java", "shell" or "" none."""
    if "{" not in value and "%" not in value:
        return ""
    match = _HEADER.search(unquote(value, errors="replace") if "%" in value else value)
    if match is None:
        return ""
    return "shell" if match.group(1) else "java"


def target_path(target: str) -> str:
    """What detection keeps of a request target: the path, with its query string only when that carries a payload
    (``/a?b=1`` -> ``/a``; ``/a?id=1' or '1'='1`` stays). Cut to ``MAX_TARGET`` characters."""
    path, sep, query = target.partition("?")
    if sep and query and payload_family("?" + query):
        return target[:MAX_TARGET]
    return path[:MAX_TARGET]
