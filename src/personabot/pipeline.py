"""Wiring: the planner and executor a worker runs, built once from the settings.

Everything here is assembly; the decisions live in `planner.py`, `triggers.py` and `runner.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from personabot import metrics
from personabot.agents import Agent, agent_from_settings
from personabot.github import GitHubApp, ResponseHook
from personabot.personas import Source, builtin_dir, read_folder
from personabot.planner import DeliveryLike, PlanResult, plan_delivery
from personabot.runner import Runner
from personabot.settings import Settings
from personabot.triggers import AppIdentity


def base_sources(settings: Settings) -> list[Source]:
    """Built-in personas, then the operator's folder: read on every use, so edits apply at once."""
    sources: list[Source] = [("builtin", read_folder(builtin_dir()))]
    if settings.personas_dir is not None:
        sources.append((str(settings.personas_dir), read_folder(settings.personas_dir)))
    return sources


@dataclass(frozen=True)
class Pipeline:
    planner: Callable[[DeliveryLike], PlanResult]
    executor: Runner
    app: GitHubApp


def build_pipeline(
    settings: Settings,
    *,
    app: GitHubApp | None = None,
    agent: Agent | None = None,
    on_response: ResponseHook | None = None,
) -> Pipeline:
    """The planner and runner for `settings`; tests pass their own app (fake GitHub) or agent."""
    app = app or GitHubApp(settings, on_response=on_response or metrics.github_response)
    agent = agent or agent_from_settings(settings)

    def planner(delivery: DeliveryLike) -> PlanResult:
        return plan_delivery(
            delivery,
            app=AppIdentity(app.slug()),
            reader_for=app.installation,
            base_sources=base_sources(settings),
            onboarding=settings.onboarding,
        )

    runner = Runner(
        app=app,
        agent=agent,
        base_sources=lambda: base_sources(settings),
        agent_timeout=settings.agent_timeout,
    )
    return Pipeline(planner=planner, executor=runner, app=app)
