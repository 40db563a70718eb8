"""Text from the outside world, made safe to store and to send on.

A source may hand billsync text no database or encoder takes: a lone UTF-16 surrogate
(``"\\ud800"`` is valid JSON, and a Java service can emit it), or a NUL character, which
PostgreSQL refuses in any text column. One such summary must not stop a sync, so the
connectors pass every text they keep through :func:`clean_text`, which replaces both with
U+FFFD, the Unicode replacement character, and leaves everything else as it was.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with lone surrogates and NUL characters replaced by U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, text)
