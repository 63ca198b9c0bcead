"""Web addresses the layouts' templates link to as `https://{{ value }}`: a host and a path.

The data carries "fjordbank.no/spar"; the print shows it as written and the e-mail links it
as https://fjordbank.no/spar. Anything else the template turns into a wrong or dangerous
link, so it is refused (`InvalidInput` at the field's JSON path) with what is wrong:

- a scheme: "javascript:alert(1)" became the link https://javascript:alert(1) (a mail client
  that repairs it runs the script), "https://fjordbank.no" https://https://fjordbank.no;
- whitespace anywhere: a link ends at it, and the print shows one address, the link another;
- no host a browser would go to: "//fjordbank.no", "fjordbank" (no dot), a user before an
  @ ("fjordbank.no@evil.example" goes to evil.example), a backslash (read as "/").

The layout schemas ask only for 1..80 characters and layout versions are immutable, so the
builders check (server code), for every version alike.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from server.errors import InvalidInput, quote

__all__ = ["host_and_path"]

# A scheme ("javascript:", "https:", "mailto:"), not a host's port ("fjordbank.no:8443/")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?!\d+(?:[/?#]|$))")
# A DNS name: labels of letters (any script: IDN), digits and hyphens, at least one dot
_HOST = re.compile(r"(?:(?!-)[^\W_](?:[^\W_]|-)*\.)+[^\W\d_](?:[^\W_]|-)*\.?")
EXAMPLE = "fjordbank.no/spar"


def host_and_path(value: str, path: str) -> str:
    """`value` when it is a host and path the template can put after https://, else
    `InvalidInput` at `path` naming what is wrong (see the module docstring)."""
    space = next((c for c in value if c.isspace()), None)
    if space is not None:
        raise InvalidInput.field(
            path, f"{quote(value)} holds whitespace (U+{ord(space):04X}) at "
            f"{value.index(space)}: a web address is one word, e.g. {EXAMPLE}")
    if _SCHEME.match(value) or value.startswith("//"):
        raise InvalidInput.field(
            path, f"{quote(value)} starts with a scheme (or //): the layout writes https:// "
            f"before it, so send the host and path only, e.g. {EXAMPLE}")
    parts = urlsplit(f"https://{value}")
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    host = parts.hostname or ""
    if ("\\" in value or "@" in parts.netloc or not port_ok
            or not _HOST.fullmatch(host)):
        raise InvalidInput.field(
            path, f"{quote(value)} is not a host and path (a domain name such as "
            f"fjordbank.no, then /path if any): e.g. {EXAMPLE}")
    return value
