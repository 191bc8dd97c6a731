"""`.github/personabot.yml` as a repository owner writes it: defaults, `on:`, and clear errors."""

from __future__ import annotations

import textwrap

import pytest
from pydantic import ValidationError

from personabot.errors import PermanentError
from personabot.repoconfig import (
    CONFIG_PATH,
    Limits,
    PersonaConfig,
    RepoConfig,
    RepoConfigError,
    parse_repo_config,
)

# The example from ARCHITECTURE.md, verbatim: the documented file must parse.
DOCUMENTED = """\
personas_dir: .github/personas   # repository personas (may be .jules/personas)
label_prefix: "persona:"         # issue label "persona:builder" runs builder on that issue
draft: false                     # open PRs as drafts
update_open_prs: true            # a new trigger adds commits to the persona's open PR (false: skip)
limits:
  open_prs: 5                    # personabot PRs open at once in this repository
personas:
  builder:
    on: [push, label]            # push, label, install, comment
    branches: [main]             # push filter; default: the default branch
    paths: ["migrations/**"]     # push filter: run only if a changed file matches
  sentinel: false                # never run this persona here
"""


def parse(text: str) -> RepoConfig:
    return parse_repo_config(textwrap.dedent(text))


def error_of(text: str) -> RepoConfigError:
    with pytest.raises(RepoConfigError) as caught:
        parse(text)
    return caught.value


def test_no_file_gives_defaults_and_says_so() -> None:
    config = parse_repo_config(None)
    assert config.exists is False
    assert config.personas_dir == ".github/personas"
    assert config.label_prefix == "persona:"
    assert config.draft is False and config.update_open_prs is True and config.allow_workflows is False
    assert config.limits == Limits(
        open_prs=5,
        max_files=200,
        max_total_bytes=5 * 1024 * 1024,
        max_text_file_bytes=1024 * 1024,
        max_binary_file_bytes=50 * 1024 * 1024,
    )
    assert config.persona("builder") == PersonaConfig(on=("label", "comment"))


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_gives_defaults_but_exists(text: str) -> None:
    config = parse_repo_config(text)
    assert config.exists is True
    assert config.model_dump() == RepoConfig().model_dump()


def test_documented_example_parses_with_on_as_a_key() -> None:
    config = parse_repo_config(DOCUMENTED)
    assert config.exists is True
    builder = config.persona("builder")
    assert builder == PersonaConfig(on=("push", "label"), branches=("main",), paths=("migrations/**",))
    assert config.personas["sentinel"] is False
    assert config.persona("sentinel") is None
    # A persona not mentioned keeps the defaults: labels and comments.
    assert config.persona("scribe") == PersonaConfig()


def test_boolean_values_still_load_as_booleans() -> None:
    config = parse(
        """\
        draft: true
        update_open_prs: false
        allow_workflows: yes
        personas:
          sentinel: false
          builder:
            on: [install]
        """
    )
    assert config.draft is True
    assert config.update_open_prs is False
    assert config.allow_workflows is True  # YAML 1.1 `yes` is a boolean value; only keys are kept as text
    assert config.persona("sentinel") is None
    assert config.persona("builder") == PersonaConfig(on=("install",))


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "true", "True", "ON"])
def test_yaml_boolean_words_are_text_when_used_as_keys(word: str) -> None:
    # Persona ids are keys too: a persona called `yes` or `on` must not turn into True.
    config = parse(f"personas:\n  {word}: false\n")
    assert list(config.personas) == [word]


def test_on_as_a_single_word_and_branches_as_a_single_name() -> None:
    config = parse(
        """\
        personas:
          builder:
            on: push
            branches: release/*
        """
    )
    assert config.persona("builder") == PersonaConfig(on=("push",), branches=("release/*",))


def test_explicit_on_replaces_the_default() -> None:
    config = parse("personas:\n  builder:\n    on: [push]\n")
    assert config.persona("builder").on == ("push",)
    config = parse("personas:\n  builder:\n    on: []\n")
    assert config.persona("builder").on == ()


def test_limits_can_be_raised_and_lowered() -> None:
    config = parse(
        """\
        allow_workflows: true
        limits:
          open_prs: 1
          max_files: 10
          max_total_bytes: 2048
          max_text_file_bytes: 1000
          max_binary_file_bytes: 3000
        """
    )
    assert config.allow_workflows is True
    assert config.limits == Limits(
        open_prs=1, max_files=10, max_total_bytes=2048, max_text_file_bytes=1000, max_binary_file_bytes=3000
    )


def test_unknown_persona_key_names_the_path_and_line_and_suggests() -> None:
    error = error_of(
        """\
        draft: false
        personas:
          builder:
            brnches: [main]
        """
    )
    assert isinstance(error, PermanentError)
    assert (error.path, error.key, error.line) == (CONFIG_PATH, "personas.builder.brnches", 4)
    assert str(error).startswith("`.github/personabot.yml`, line 4: personas.builder.brnches: unknown key")
    assert "did you mean 'branches'?" in str(error)
    assert "on, branches, paths" in str(error)


def test_unknown_trigger_name_message_matches_the_contract() -> None:
    error = error_of(
        """\
        personas:
          builder:
            on:
              - push
              - pushh
        """
    )
    assert (error.key, error.line) == ("personas.builder.on", 5)
    assert str(error) == (
        "`.github/personabot.yml`, line 5: personas.builder.on: 'pushh' is not one of push, label, install, comment"
    )


def test_flow_list_trigger_error_points_at_its_line() -> None:
    error = error_of("limits:\n  open_prs: 2\npersonas:\n  builder:\n    on: [push, pushh]\n")
    assert str(error) == (
        "`.github/personabot.yml`, line 5: personas.builder.on: 'pushh' is not one of push, label, install, comment"
    )


@pytest.mark.parametrize(
    ("text", "key", "line", "problem"),
    [
        ('draft: "yes"\n', "draft", 1, "expected true or false, got 'yes'"),
        ("label_prefix: x\nupdate_open_prs: 1\n", "update_open_prs", 2, "expected true or false, got 1"),
        ("allow_workflows: 'true'\n", "allow_workflows", 1, "expected true or false, got 'true'"),
        ("label_prefix: 5\n", "label_prefix", 1, "expected text, got 5"),
        ("label_prefix: ''\n", "label_prefix", 1, "must not be empty"),
        ("limits:\n  open_prs: 0\n", "limits.open_prs", 2, "expected a positive whole number, got 0"),
        ("limits:\n  max_files: -3\n", "limits.max_files", 2, "expected a positive whole number, got -3"),
        ("limits:\n  max_files: 2.5\n", "limits.max_files", 2, "expected a whole number, got 2.5"),
        ("limits:\n  max_total_bytes: '5'\n", "limits.max_total_bytes", 2, "expected a whole number, got '5'"),
        ("limits:\n  max_text_file_bytes: true\n", "limits.max_text_file_bytes", 2, "expected a whole number, got true"),
        ("limits:\n  open_pr: 3\n", "limits.open_pr", 2, "unknown key (did you mean 'open_prs'?)"),
        ("limits: 5\n", "limits", 1, "expected a mapping, got 5"),
        ("personas: [builder]\n", "personas", 1, "expected a mapping, got a list"),
        ("personas:\n  builder: true\n", "personas.builder", 2, "expected the persona's settings (a mapping) or false, got true"),
        ("personas:\n  builder:\n", "personas.builder", 2, "expected the persona's settings (a mapping) or false, got nothing (null)"),
        ("personas:\n  builder:\n    branches: [1]\n", "personas.builder.branches", 3, "expected text, got 1"),
        ("personas:\n  builder:\n    paths: {a: b}\n", "personas.builder.paths", 3, "expected a list, got a mapping"),
        ("personas:\n  builder:\n    paths: ['']\n", "personas.builder.paths", 3, "patterns must not be empty"),
        ("personas_dir: ../elsewhere\n", "personas_dir", 1, "must be a folder inside the repository"),
        ("personas_dir: /etc\n", "personas_dir", 1, "must be a folder inside the repository"),
        ("on: [push]\n", "on", 1, "unknown key"),
        ("exists: true\n", "exists", 1, "unknown key"),
    ],
)
def test_wrong_values_are_errors_naming_key_and_line(text: str, key: str, line: int, problem: str) -> None:
    error = error_of(text)
    assert (error.key, error.line) == (key, line)
    assert str(error).startswith(f"`{CONFIG_PATH}`, line {line}: {key}: {problem}")


def test_several_problems_are_all_listed_in_file_order() -> None:
    error = error_of("personas:\n  builder:\n    on: [pushh]\ndraft: maybe\n")
    lines = str(error).splitlines()
    assert lines == [
        "`.github/personabot.yml`, line 3: personas.builder.on: 'pushh' is not one of push, label, install, comment",
        "`.github/personabot.yml`, line 4: draft: expected true or false, got 'maybe'",
    ]
    assert (error.key, error.line) == ("personas.builder.on", 3)


def test_a_persona_named_like_an_internal_tag_keeps_its_name_in_errors() -> None:
    error = error_of("personas:\n  settings:\n    onn: [push]\n")
    assert error.key == "personas.settings.onn"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("draft: [\n", 2, "not valid YAML"),
        ("draft: false\ndraft: true\n", 2, "duplicate key 'draft'"),
        ("personas:\n  builder: {}\n  builder: false\n", 3, "duplicate key 'builder'"),
        ("- draft\n", 1, "expected a mapping of settings at the top level, got a list"),
        ("just text\n", 1, "expected a mapping of settings at the top level, got 'just text'"),
        ("a: &a [*a]\n", 1, "not valid YAML"),
    ],
)
def test_malformed_files_are_errors_with_a_line(text: str, line: int, problem: str) -> None:
    error = error_of(text)
    assert error.line == line
    assert problem in str(error)
    assert str(error).startswith(f"`{CONFIG_PATH}`, line {line}: ")


def test_aliases_and_merge_keys_work() -> None:
    config = parse(
        """\
        personas:
          builder: &auto
            on: [push, install]
          scribe: *auto
          curator:
            <<: *auto
            branches: [main, develop]
        """
    )
    assert config.persona("scribe") == PersonaConfig(on=("push", "install"))
    assert config.persona("curator") == PersonaConfig(on=("push", "install"), branches=("main", "develop"))


def test_alias_bombs_do_not_explode() -> None:
    # Each level multiplies the references by 9; only shared nodes are walked, so this stays instant.
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 12):
        levels.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    error = error_of("\n".join(levels) + "\n")
    assert error.key == "a0"


def test_config_is_immutable() -> None:
    config = parse_repo_config(DOCUMENTED)
    with pytest.raises(ValidationError, match="frozen"):
        config.draft = True  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        config.limits.open_prs = 9  # type: ignore[misc]


def test_exists_is_not_part_of_the_dumped_settings() -> None:
    assert "exists" not in parse_repo_config(DOCUMENTED).model_dump()
