#!/usr/bin/env python
"""Django's command-line utility for Nexus.

A service that cannot be reached is a one-line error with what to do, not a traceback.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_backend.settings")
    if sys.argv[1:2] == ["embedded"] and any(a in ("stop", "status") for a in sys.argv[2:]):
        os.environ["NEXUS_EMBEDDED_AUTOSTART"] = "0"  # look at the embedded servers, don't start them
    from django.core.management import execute_from_command_line

    from nexus_backend.infra.errors import explain_unreachable

    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        message = explain_unreachable(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
