"""Site layouts: what a generated world serves, so every population asks for paths that exist (or, for probes and
stale links, that do not).

- ``poll_site``: this project's deployment: a single-page app (``/``, ``/polls/<id>``) with hashed assets, the
  REST API under ``/api/`` (JWT login at ``/api/auth/token/``: 401 on a failure), GraphQL, Django admin.
- ``content_site``: a generic blog: posts under a per-seed prefix, tags, an RSS feed, a contact form, comments, a
  hand-made login form (a failed login re-renders the form with 200, a success redirects), images and fonts.
Names, hashes, post slugs and the feed path differ by seed, so two worlds never share a layout by accident.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

WORDS = ["river", "garden", "kernel", "sourdough", "python", "django", "winter", "bicycle", "camera", "jazz",
         "postgres", "redis", "maps", "tea", "linux", "sketch", "travel", "lisbon", "nairobi", "kyoto", "budget",
         "notes", "review", "migration", "hiking", "lamp", "coffee", "music", "climbing", "books", "fermentation",
         "typography", "keyboard", "backup", "garden-log", "solar", "rust", "vim", "cli", "cache"]  # fmt: skip


@dataclass
class Site:
    name: str
    origin: str  # scheme://host, for the referrers of internal navigation
    pages: list[str]  # what people read, most popular first
    assets: list[str]  # loaded by a browser with the first page of a visit
    images: dict[str, list[str]] = field(default_factory=dict)  # page -> its own images
    login_page: str = ""  # the page with the login form ("" for an API-only login)
    login_post: str = ""
    login_ok: int = 200
    login_failed: int = 401
    comment_posts: dict[str, str] = field(default_factory=dict)  # page -> where its comment form posts
    contact: str = ""  # a page with a form that posts to itself
    feed: str = ""
    api: list[str] = field(default_factory=list)  # GET endpoints an app or a developer calls
    admin: str = "/admin/"
    stale: list[str] = field(default_factory=list)  # old links that answer 404
    polls: int = 0  # poll ids 1..polls exist (poll world)

    def page(self, rng: random.Random) -> str:
        """A page by popularity (Zipf-like: the first pages get most visits)."""
        n = len(self.pages)
        return self.pages[min(n - 1, int(rng.paretovariate(1.1)) - 1)] if rng.random() < 0.8 else rng.choice(self.pages)

    def url(self, path: str) -> str:
        return self.origin + path

    def xhr(self, page: str, rng: random.Random) -> list[tuple[str, str, int]]:
        """The API calls the single-page app makes for ``page`` (nothing on a content site)."""
        if not self.polls:
            return []
        if page == "/":
            calls = [("GET", "/api/polls/", 200)]
            if rng.random() < 0.2:
                calls.append(("GET", "/api/polls/", 200))  # the next page of the list
            return calls
        pid = page.rstrip("/").rsplit("/", 1)[-1]
        status = 200 if int(pid) <= self.polls else 404
        return [("GET", f"/api/polls/{pid}/", status)] + (
            [("GET", f"/api/polls/{pid}/results/", 200)] if status == 200 else []
        )


def _hash(rng: random.Random, n: int = 8) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def poll_site(rng: random.Random, *, polls: int = 300) -> Site:
    js, vendor, css = _hash(rng), _hash(rng), _hash(rng)
    pages = ["/"] + [f"/polls/{pid}" for pid in rng.sample(range(1, polls + 1), polls)]
    return Site(
        name="polls",
        origin="https://polls.example.com",
        pages=pages,
        assets=[
            f"/static/assets/index-{js}.js",
            f"/static/assets/vendor-{vendor}.js",
            f"/static/assets/index-{css}.css",
            "/favicon.ico",
            f"/static/assets/logo-{_hash(rng)}.svg",
            "/static/assets/inter-latin-400.woff2",
        ],  # fmt: skip
        login_post="/api/auth/token/",
        login_ok=200,
        login_failed=401,
        api=["/api/polls/", "/api/polls/{pid}/", "/api/polls/{pid}/results/", "/api/auth/me/", "/graphql/"],
        admin="/admin/",
        stale=[f"/polls/{polls + rng.randint(1, 500)}" for _ in range(20)] + ["/api/v1/polls/", "/about"],
        polls=polls,
    )


def content_site(rng: random.Random, *, posts: int = 60) -> Site:
    prefix = rng.choice(["/blog/", "/posts/", "/notes/", "/"])
    slugs = ["-".join(rng.sample(WORDS, rng.randint(2, 4))) for _ in range(posts)]
    post_pages = [f"{prefix}{s}/" if prefix != "/" else f"/{rng.randint(2016, 2025)}/{s}/" for s in slugs]
    tags = [f"/tags/{w}/" for w in rng.sample(WORDS, 12)]
    base = ["/", prefix if prefix != "/" else "/archive/", "/about/", "/projects/", "/contact/"]
    login = rng.choice(["/login/", "/signin/", "/account/login/"])
    css, js = _hash(rng), _hash(rng)
    return Site(
        name="site",
        origin=rng.choice(["https://www.example.org", "https://blog.example.net", "https://example.io"]),
        pages=base[:1] + post_pages[:5] + base[1:] + post_pages[5:] + tags,
        assets=[
            f"/static/css/main.{css}.css",
            f"/static/js/main.{js}.js",
            "/static/fonts/inter-var.woff2",
            "/favicon.ico",
            "/static/img/avatar.webp",
        ],  # fmt: skip
        images={
            p: [f"/static/img/{p.strip('/').rsplit('/', 1)[-1]}-{k}.jpg" for k in range(rng.randint(0, 4))]
            for p in post_pages
        },  # fmt: skip
        login_page=login,
        login_post=login,
        login_ok=302,
        login_failed=200,
        comment_posts={p: f"{p}comments/" for p in post_pages},
        contact="/contact/",
        feed=rng.choice(["/feed/", "/rss.xml", "/feed.xml", "/index.xml", "/atom.xml"]),
        api=["/", "/search/", rng.choice(["/feed/", "/rss.xml"])],
        admin="",
        stale=[f"{prefix}{'-'.join(rng.sample(WORDS, 2))}/" for _ in range(25)] + ["/old-site/", "/index.html"],
    )
