"""The onboarding pull request: a commented `.github/personabot.yml` for a new installation.

Until a repository has a config, personas act only when asked (label or comment); the onboarding PR
shows what is available and turns nothing on by itself. Pure: the runner does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from personabot.personas import Persona
from personabot.repoconfig import CONFIG_PATH, Limits, RepoConfig
from personabot.triggers import RepoRef, RunSpec

ONBOARDING = "onboarding"
BRANCH = "personabot/onboarding"
TITLE = "Configure personabot"


def onboarding_spec(repository: RepoRef, installation_id: int, event: str) -> RunSpec:
    """The run that opens the onboarding PR; one key per repository, so it is never doubled."""
    return RunSpec(
        repository=repository.full_name,
        default_branch=repository.default_branch,
        installation_id=installation_id,
        persona=ONBOARDING,
        trigger="install",
        event=event,
        issue_number=None,
        concurrency_key=f"{repository.full_name}:{ONBOARDING}",
    )


def is_onboarding(spec: RunSpec) -> bool:
    return spec.persona == ONBOARDING and spec.trigger == "install"


def config_text(personas: Mapping[str, Persona]) -> str:
    """A valid config with the defaults spelled out and every persona listed, push triggers off."""
    defaults = RepoConfig()
    limits = Limits()
    lines = [
        "# personabot configuration. Personas act on this repository only as this file allows.",
        "# Without this file they run only when asked: label an issue `persona:<id>` or comment",
        "# `/persona <id>` on it (people with write access only).",
        "",
        f"personas_dir: {defaults.personas_dir}   # your own personas (Markdown with front matter)",
        f'label_prefix: "{defaults.label_prefix}"        # the label `persona:builder` runs builder on that issue',
        "draft: false                     # open pull requests as drafts",
        "update_open_prs: true            # a new trigger adds commits to the persona's open PR",
        "allow_workflows: false           # let personas change .github/workflows/",
        "limits:",
        f"  open_prs: {limits.open_prs}                    # personabot PRs open at once",
        f"  max_files: {limits.max_files}                 # files changed per run",
        "",
        "personas:",
    ]
    for persona in personas.values():
        if not persona.enabled:
            continue
        about = persona.description or persona.title
        mode = "runs only when asked" if persona.automation_mode == "MANUAL" else "may run automatically"
        lines += [
            f"  # {persona.emoji + ' ' if persona.emoji else ''}{persona.id}: {about} ({mode})",
            f"  {persona.id}:",
            "    on: [label, comment]         # add push (and branches/paths filters) or install to automate",
            "    # branches: [main]",
            '    # paths: ["src/**"]',
        ]
    if not any(persona.enabled for persona in personas.values()):
        lines.append("  {}")
    return "\n".join(lines) + "\n"


def pr_body(marker: str) -> str:
    return (
        f"Welcome to personabot! This pull request adds `{CONFIG_PATH}`, which lists the personas "
        "available to this repository and what may trigger them.\n\n"
        "- **Merge it** to turn on what you choose: every persona starts with label and comment "
        "triggers only; add `push` or `install` to a persona's `on:` list to let it run by itself.\n"
        "- **Close it** to keep personabot quiet: personas then run only when someone asks on an "
        "issue, and this pull request is not opened again.\n\n"
        f"{marker}"
    )
