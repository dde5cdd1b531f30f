"""Settings shared by every role, read from `KUBEJUDGE_*` environment variables.

Each role extends `Settings` with what only it reads (see `kubejudge_api.settings` and friends);
the chart and the operator's generated Deployments set the same names.
"""

from __future__ import annotations

import contextlib

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubejudge.languages import FAMILIES, LANGUAGES

DEFAULT_POOL = "default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUBEJUDGE_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://kubejudge@127.0.0.1:5432/kubejudge"
    # HS256 keys shorter than 32 bytes are weak (RFC 7518 §3.2); PyJWT warns on them too.
    jwt_secret: str = Field(default="dev-only-insecure-secret-change-me-0123456789", min_length=32)
    # Judge0's X-Auth-Token; authentication is off while it is unset.
    auth_token: str | None = None
    # Worker pools by name -> language families they judge; "*" takes every family not named.
    pools: dict[str, list[str]] = Field(default_factory=lambda: {DEFAULT_POOL: ["*"]})
    # How many events each user's history stream keeps for replay after a reconnect.
    history_length: int = Field(default=1000, ge=10)
    log_level: str = "INFO"

    @field_validator("pools")
    @classmethod
    def _pools_name_known_families(cls, pools: dict[str, list[str]]) -> dict[str, list[str]]:
        if not pools:
            raise ValueError("expected at least one worker pool, got none")
        for name, families in pools.items():
            unknown = set(families) - FAMILIES - {"*"}
            if unknown:
                raise ValueError(f"pool {name!r}: unknown language families {sorted(unknown)}")
        return pools

    def pool_for(self, family: str) -> str:
        """The pool that judges a language family: the pool naming it, else the `*` pool."""
        wildcard = None
        for name, families in self.pools.items():
            if family in families:
                return name
            if "*" in families:
                wildcard = name
        if wildcard is None:
            raise LookupError(f"no worker pool judges {family!r}")
        return wildcard

    def pool_for_language(self, language_id: int) -> str:
        """The pool whose queue a submission in this Judge0 language id goes to."""
        return self.pool_for(LANGUAGES[language_id].family)

    def language_ids(self, pool: str) -> list[int]:
        """The ids of the languages a pool judges."""
        ids = []
        for language_id in LANGUAGES:
            with contextlib.suppress(LookupError):  # a family no pool judges
                if self.pool_for_language(language_id) == pool:
                    ids.append(language_id)
        return ids

    @property
    def sqlalchemy_url(self) -> str:
        """DESIGN.md takes a plain postgresql:// URL; the code picks the asyncpg driver."""
        scheme, _, rest = self.database_url.partition("://")
        if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError(f"expected a postgresql:// database URL, got {scheme}://")
        return f"postgresql+asyncpg://{rest}"
