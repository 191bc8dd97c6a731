"""Run specifications: what one run is about (placeholder for the store branch).

This file holds ONLY the dataclasses the store and worker need (from CONTRACTS.md); the real
triggers module, with `plan()` and the rules, is written on the triggers branch and replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

TriggerKind = Literal["push", "label", "install", "comment", "schedule", "manual"]


@dataclass(frozen=True)
class IssueInfo:
    number: int
    title: str
    body: str
    url: str
    labels: tuple[str, ...] = ()
    author: str = ""


@dataclass(frozen=True)
class PushCommit:
    id: str
    message: str
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushInfo:
    ref: str
    before: str
    after: str
    commits: tuple[PushCommit, ...] = ()


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class RunSpec:
    repository: str
    default_branch: str | None
    installation_id: int
    persona: str
    trigger: TriggerKind
    event: str
    issue_number: int | None
    concurrency_key: str
    issue: IssueInfo | None = None
    push: PushInfo | None = None
    comment_id: int | None = None
    comment_author: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict; the store keeps it so a run can be executed long after planning."""
        issue = self.issue
        push = self.push
        return {
            "repository": self.repository,
            "default_branch": self.default_branch,
            "installation_id": self.installation_id,
            "persona": self.persona,
            "trigger": self.trigger,
            "event": self.event,
            "issue_number": self.issue_number,
            "concurrency_key": self.concurrency_key,
            "issue": None
            if issue is None
            else {
                "number": issue.number,
                "title": issue.title,
                "body": issue.body,
                "url": issue.url,
                "labels": list(issue.labels),
                "author": issue.author,
            },
            "push": None
            if push is None
            else {
                "ref": push.ref,
                "before": push.before,
                "after": push.after,
                "commits": [
                    {
                        "id": c.id,
                        "message": c.message,
                        "added": list(c.added),
                        "modified": list(c.modified),
                        "removed": list(c.removed),
                    }
                    for c in push.commits
                ],
            },
            "comment_id": self.comment_id,
            "comment_author": self.comment_author,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        issue = data.get("issue")
        push = data.get("push")
        return cls(
            repository=data["repository"],
            default_branch=data.get("default_branch"),
            installation_id=int(data["installation_id"]),
            persona=data["persona"],
            trigger=cast(TriggerKind, data["trigger"]),
            event=data["event"],
            issue_number=data.get("issue_number"),
            concurrency_key=data["concurrency_key"],
            issue=None
            if issue is None
            else IssueInfo(
                number=issue["number"],
                title=issue["title"],
                body=issue["body"],
                url=issue["url"],
                labels=tuple(issue.get("labels", ())),
                author=issue.get("author", ""),
            ),
            push=None
            if push is None
            else PushInfo(
                ref=push["ref"],
                before=push["before"],
                after=push["after"],
                commits=tuple(
                    PushCommit(
                        id=c["id"],
                        message=c["message"],
                        added=tuple(c.get("added", ())),
                        modified=tuple(c.get("modified", ())),
                        removed=tuple(c.get("removed", ())),
                    )
                    for c in push.get("commits", ())
                ),
            ),
            comment_id=data.get("comment_id"),
            comment_author=data.get("comment_author"),
        )
