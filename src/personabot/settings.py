"""Server settings: one typed object, read once from the environment and `.env`.

Names follow Probot where Probot has one (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET, ...), so an operator
moving from a Probot app recognises them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=True,
        populate_by_name=True,
    )

    app_id: int | None = Field(default=None, alias="APP_ID")
    private_key: SecretStr | None = Field(default=None, alias="PRIVATE_KEY")
    private_key_path: Path | None = Field(default=None, alias="PRIVATE_KEY_PATH")
    webhook_secret: SecretStr | None = Field(default=None, alias="WEBHOOK_SECRET")
    webhook_path: str = Field(default="/api/github/webhooks", alias="WEBHOOK_PATH")
    host: str = Field(default="0.0.0.0", alias="HOST")
    port: int = Field(default=3000, alias="PORT")
    github_api_url: str = Field(default="https://api.github.com", alias="GITHUB_API_URL")
    github_url: str = Field(default="https://github.com", alias="GITHUB_URL")
    github_client_id: str | None = Field(default=None, alias="GITHUB_CLIENT_ID")
    github_client_secret: SecretStr | None = Field(default=None, alias="GITHUB_CLIENT_SECRET")
    database_url: str = Field(default="sqlite:///personabot.db", alias="DATABASE_URL")
    agent: str | None = Field(default=None, alias="PERSONABOT_AGENT")
    agent_command: str | None = Field(default=None, alias="PERSONABOT_AGENT_COMMAND")
    agent_timeout: float = Field(default=1800, gt=0, alias="PERSONABOT_AGENT_TIMEOUT")
    agent_env: str = Field(default="", alias="PERSONABOT_AGENT_ENV")
    personas_dir: Path | None = Field(default=None, alias="PERSONABOT_PERSONAS_DIR")
    public_url: str | None = Field(default=None, alias="PERSONABOT_URL")
    environment: str = Field(default="development", alias="PERSONABOT_ENV")
    onboarding: bool = Field(default=True, alias="PERSONABOT_ONBOARDING")
    log_level: str = Field(default="info", alias="LOG_LEVEL")
    log_format: str = Field(default="pretty", alias="LOG_FORMAT")

    @field_validator("private_key", mode="before")
    @classmethod
    def _unescape_newlines(cls, value: object) -> object:
        # Hosting dashboards often cannot hold multi-line values; Probot accepts a literal "\n".
        if isinstance(value, str) and "\\n" in value:
            return value.replace("\\n", "\n")
        return value

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("pretty", "json"):
            raise ValueError("LOG_FORMAT must be 'pretty' or 'json'")
        return value

    @property
    def agent_env_names(self) -> list[str]:
        return [name.strip() for name in self.agent_env.split(",") if name.strip()]

    @property
    def url(self) -> str:
        """The server's public URL, used in the app manifest and setup links."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    def app_private_key(self) -> str | None:
        """The PEM text of the App's key, from PRIVATE_KEY or the file at PRIVATE_KEY_PATH."""
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        if self.private_key_path is not None:
            return self.private_key_path.read_text(encoding="utf-8")
        return None

    @property
    def has_app_credentials(self) -> bool:
        return self.app_id is not None and (
            self.private_key is not None or self.private_key_path is not None
        )


def settings_error_text(error: ValidationError) -> str:
    """What is wrong with the settings, naming the variables but never their values (may be secret)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}" for e in error.errors()
    )


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; callers pass the object on instead of reading the environment again."""
    return Settings(**overrides)  # type: ignore[arg-type]
