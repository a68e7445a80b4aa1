"""What pytest loads (pyproject.toml): the development settings, unchanged.

Tests run against the real services (the embedded ones, or DATABASE_URL / REDIS_URL when set) and read the same
variables as development, so a setting a test needs different is set by that test (override_settings), not here.
"""

from .development import *  # noqa: F403
