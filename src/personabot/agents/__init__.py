"""Coding agents: the Agent protocol, the subprocess backend and presets for known CLIs."""

from __future__ import annotations

import shlex

from personabot.agents.base import Agent, AgentResult, AgentStatus, redact
from personabot.agents.command import FORBIDDEN_ENV, CommandAgent, stop_all_agents
from personabot.agents.presets import PRESETS
from personabot.errors import PermanentError
from personabot.settings import Settings

__all__ = [
    "FORBIDDEN_ENV",
    "PRESETS",
    "Agent",
    "AgentResult",
    "AgentStatus",
    "CommandAgent",
    "agent_from_settings",
    "redact",
    "settings_secrets",
    "stop_all_agents",
]


def settings_secrets(settings: Settings) -> list[str]:
    """The literal secret values an agent's output must never show."""
    values = [settings.webhook_secret, settings.github_client_secret, settings.private_key]
    secrets = [v.get_secret_value() for v in values if v is not None]
    try:
        key = settings.app_private_key()
    except OSError:
        key = None
    if key:
        secrets.append(key.strip())
    return secrets


def agent_from_settings(settings: Settings) -> Agent:
    """The agent PERSONABOT_AGENT names: a preset, or `command` with PERSONABOT_AGENT_COMMAND."""
    choice = (settings.agent or "").strip()
    names = ", ".join(sorted(PRESETS))
    if not choice:
        raise PermanentError(
            f"no agent configured: set PERSONABOT_AGENT to a preset ({names}) or to 'command' "
            "with PERSONABOT_AGENT_COMMAND"
        )
    if choice == "command":
        line = (settings.agent_command or "").strip()
        source = "PERSONABOT_AGENT_COMMAND"
        if not line:
            raise PermanentError("PERSONABOT_AGENT=command needs PERSONABOT_AGENT_COMMAND (the command line)")
    elif choice in PRESETS:
        line, source = PRESETS[choice], f"preset {choice!r}"
    else:
        raise PermanentError(f"PERSONABOT_AGENT={choice!r} is unknown: use one of {names}, or 'command'")
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise PermanentError(f"{source}: cannot split the command line: {exc}") from None
    if not argv:
        raise PermanentError(f"{source}: the command line is empty")
    return CommandAgent(argv, settings.agent_env_names, secrets=settings_secrets(settings))
