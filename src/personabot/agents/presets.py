"""Command lines for known coding-agent CLIs in their documented non-interactive modes.

Each line is split with shlex and run without a shell; `$PERSONABOT_PROMPT_FILE`,
`$PERSONABOT_SUMMARY_FILE` and `$HOME` are replaced by personabot (see command.expand). The prompt
is always on stdin too. Permission choices stay on the cautious side: edits in the workspace are
allowed without asking, broader powers are left to an explicit PERSONABOT_AGENT=command line.
"""

from __future__ import annotations

PRESETS: dict[str, str] = {
    # Claude Code: -p (print mode) runs once and exits; with no prompt argument the prompt is read
    # from stdin. acceptEdits approves file edits; shell commands that need approval are refused.
    "claude": "claude -p --permission-mode acceptEdits",
    # Codex CLI: `exec` is the non-interactive mode; `-` reads the prompt from stdin. The
    # workspace-write sandbox lets it edit the workspace (network off); its final message becomes
    # the PR summary.
    "codex": "codex exec --sandbox workspace-write --output-last-message $PERSONABOT_SUMMARY_FILE -",
    # Aider: --message-file runs one instruction and exits; --yes-always answers its questions.
    # No auto-commits and no .gitignore edit (personabot makes the commit); its history files go
    # to the temporary HOME instead of the repository.
    "aider": (
        "aider --message-file $PERSONABOT_PROMPT_FILE --yes-always --no-auto-commits"
        " --no-gitignore --no-check-update --no-stream --no-pretty"
        " --chat-history-file $HOME/.aider.chat.history.md"
        " --input-history-file $HOME/.aider.input.history"
    ),
    # Gemini CLI: -p forces headless mode and is appended to the prompt piped on stdin; auto_edit
    # approves edit tools only. --skip-trust: the temporary workspace is not a trusted folder, and
    # untrusted folders fall back to asking for every edit.
    "gemini": "gemini --skip-trust --approval-mode auto_edit -p 'Carry out the task described above.'",
    # goose: `run` executes once and exits; `-i -` reads the instructions from stdin.
    "goose": "goose run -i -",
}
