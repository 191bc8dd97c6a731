"""Cleaning text written by strangers before it reaches an agent's prompt.

Issue and comment bodies are untrusted. HTML comments are invisible on GitHub but visible to an
agent, and zero-width or bidirectional control characters can hide instructions from the human who
reviews the issue; both are removed so the agent reads what the maintainer sees.
"""

from __future__ import annotations

import re

# A comment left open runs to the end of the text, as it does when GitHub renders it.
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def sanitize_text(text: str | None) -> str:
    """Return `text` without HTML comments and invisible or direction-changing characters."""
    if not text:
        return ""
    return _INVISIBLE.sub("", _HTML_COMMENT.sub("", text))
