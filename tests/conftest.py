"""Shared test helpers: where the fixtures live (../shared beside the project)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"fixtures not found at {FIXTURES}: ../shared must sit beside the project")
    return FIXTURES


def load_fixture(name: str, **changes: object) -> dict:
    """A copy of a recorded webhook payload, with top-level keys replaced or added."""
    import json

    payload = json.loads((FIXTURES / "github-webhooks" / name).read_text(encoding="utf-8"))
    payload.update(changes)
    return payload


@pytest.fixture(scope="session")
def pem() -> str:
    """A real RSA key for the App's JWT (generated once per test session)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
