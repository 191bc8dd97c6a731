"""Cleaning text written by strangers before it reaches an agent's prompt.

Issue and comment bodies are untrusted. HTML comments are invisible on GitHub but visible to an
agent, and zero-width or bidirectional control characters can hide instructions from the human who
reviews the issue; both are removed so the agent reads what the maintainer sees.
"""

from __future__ import annotations

import re

# Zero-width and bidirectional controls: invisible in GitHub's UI, so they can hide instructions
# from the human who reads the issue while the agent still reads them.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# A comment left open runs to the end of the text, as it does when GitHub renders it.
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)


def sanitize_text(text: str | None) -> str:
    """Strip what a reader on GitHub cannot see: HTML comments and invisible control characters.

    Invisible characters go first (a zero-width space inside `<!-\u200b-` would otherwise hide a
    comment from the pattern), and comments are removed until none is left, because removing one
    can join the pieces of another (`<!-<!-- -->- x -->`).
    """
    if not text:
        return ""
    cleaned = _INVISIBLE.sub("", text)
    while True:
        stripped = _HTML_COMMENT.sub("", cleaned)
        if stripped == cleaned:
            return stripped
        cleaned = stripped
