"""`personabot serve`: the web app and N worker slots in one process.

Without App credentials the server starts in setup mode (the manifest flow), and switches to normal
mode in place once setup wrote them: the webhook route is added and the workers start, no restart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from personabot import metrics, setup
from personabot.agents import stop_all_agents
from personabot.errors import PermanentError
from personabot.settings import Settings
from personabot.store import Store
from personabot.web import create_app, webhook_route
from personabot.worker import Executor, Planner, Worker, default_pipeline

log = logging.getLogger(__name__)

PipelineFactory = Callable[[Settings], tuple[Planner, Executor]]


class Server:
    """Holds what `serve` runs: the store, the current settings and, when started, the workers."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        workers: int = 2,
        env_path: Path = Path(".env"),
        pipeline: PipelineFactory = default_pipeline,
        grace_seconds: float = 30.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.workers = workers
        self.env_path = env_path
        self.pipeline = pipeline
        self.grace_seconds = grace_seconds
        self.worker: Worker | None = None
        self._prepared: tuple[Planner, Executor] | None = None

    @property
    def setup_mode(self) -> bool:
        return setup.needs_setup(self.settings)

    def prepare(self) -> None:
        """Fail before listening: setup refused in production, or workers without an agent.

        Raises setup.SetupNotAllowed, setup.SetupError or PermanentError with the message to print.
        """
        if self.setup_mode:
            setup.check_setup_allowed(self.settings)
        elif self.workers > 0:
            self._prepared = self.pipeline(self.settings)

    def app(self) -> Starlette:
        routes = [
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]
        if not self.setup_mode:
            return create_app(self.settings, self.store, routes=routes, lifespan=self._lifespan)
        app = create_app(self.settings, self.store, webhook=False, routes=routes, lifespan=self._lifespan)

        def configured(new: Settings) -> None:
            # Called on the event loop by the setup callback: only quick work here.
            self.settings = new
            app.router.routes.insert(0, webhook_route(new, self.store))
            log.info("setup complete: accepting webhooks at %s", new.webhook_path)
            self._start_workers()

        app.router.routes.extend(setup.setup_routes(self.settings, self.env_path, configured))
        return app

    async def readyz(self, request: Request) -> Response:
        """Ready when the database answers and its schema is the one this code expects."""
        problems = await run_in_threadpool(self._readiness_problems)
        if problems:
            return JSONResponse({"ok": False, "problems": problems}, status_code=503)
        return JSONResponse({"ok": True})

    async def metrics(self, request: Request) -> Response:
        depth = await run_in_threadpool(self._queue_depth)
        return Response(metrics.render(depth), media_type=metrics.CONTENT_TYPE)

    def _queue_depth(self) -> dict[str, int] | None:
        try:
            return self.store.queue_depth()
        except Exception:  # a scrape must not fail because the database is down; /readyz says so
            log.warning("queue depth unavailable for /metrics", exc_info=True)
            return None

    def _readiness_problems(self) -> list[str]:
        if not self.store.ping():
            return ["database unreachable"]
        current, head = self.store.current_revision(), self.store.head_revision()
        if current != head:
            return [f"database at revision {current or 'none'}, code expects {head}: run `personabot db upgrade`"]
        return []

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if not self.setup_mode:
            self._start_workers()
        try:
            yield
        finally:
            await run_in_threadpool(self._stop_workers)

    def _start_workers(self) -> None:
        if self.workers == 0 or self.worker is not None:
            return
        try:
            planner, executor = self._prepared or self.pipeline(self.settings)
        except PermanentError as exc:
            # Deliveries are still recorded; they wait in the queue until a worker can run them.
            log.error("workers not started: %s", exc)
            return
        self.worker = Worker(
            self.store, planner, executor, concurrency=self.workers, grace_seconds=self.grace_seconds
        )
        self.worker.start()
        log.info("%d worker slot(s) started", self.workers)

    def _stop_workers(self) -> None:
        if self.worker is not None:
            released = self.worker.stop()
            if released:
                log.info("released runs %s back to the queue", released)
                stop_all_agents()  # their agents must not outlive this process
            self.worker = None
