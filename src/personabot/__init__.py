"""personabot: a GitHub App that runs coding-agent personas and opens pull requests."""

__version__ = "0.1.0"
