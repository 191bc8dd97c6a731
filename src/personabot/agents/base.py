"""What every agent backend returns, and the redaction applied to anything an agent printed.

Agent output ends up in status comments on public issues and in the database, and an agent may
echo whatever it found in its environment or the repository, so everything it says passes
through `redact` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

AgentStatus = Literal["ok", "failed", "timeout"]

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 6  # shorter literal values would blank out ordinary words


@dataclass(frozen=True)
class AgentResult:
    status: AgentStatus
    summary: str  # what the agent wrote to $PERSONABOT_SUMMARY_FILE ("" when nothing), redacted
    log: str  # the tail of stdout+stderr, redacted
    exit_code: int | None  # negative: killed by that signal; None: never started
    duration: float  # seconds

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, for a status comment."""
        return "\n".join(self.log.rstrip("\n").splitlines()[-lines:])


class Agent(Protocol):
    def run(self, prompt: str, workspace: Path, timeout: float) -> AgentResult: ...


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, complete or cut off by the output cap.
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        f"-----{REDACTED} PRIVATE KEY-----",
    ),
    # GitHub tokens: personal (ghp_), OAuth (gho_), user-to-server (ghu_), installation (ghs_),
    # refresh (ghr_), fine-grained PATs (github_pat_).
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), REDACTED),
    # Model-provider keys that agents are given through PERSONABOT_AGENT_ENV.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), REDACTED),
    # Authorization headers and credentials embedded in URLs.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    (re.compile(r"(?i)(authorization:\s*)(?:token\s+|basic\s+)?\S+"), rf"\1{REDACTED}"),
    (re.compile(r"(://)[^/\s:@]+:[^/\s@]+@"), rf"\1{REDACTED}@"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Blank out anything that looks like a key or token, and the literal `secrets` given."""
    # Longest first, so a secret that contains another is removed whole.
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
        # Multi-line secrets (PEM keys) also appear with escaped newlines, as in .env files.
        if "\n" in secret:
            text = text.replace(secret.replace("\n", "\\n"), REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
