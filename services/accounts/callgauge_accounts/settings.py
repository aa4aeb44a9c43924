"""The accounts service's settings: its own fields and the shared parts it reads."""

from __future__ import annotations

from pydantic import Field

from callgauge_platform.settings import AccountsEndpoint, RateLimitSettings, StoreServiceSettings


class AccountsSettings(StoreServiceSettings, AccountsEndpoint, RateLimitSettings):
    """Every CALLGAUGE_* setting the accounts service reads (the docs' settings reference)."""

    jwt_secret: str = Field("", description="HMAC secret of access tokens (>= 32 chars); empty = generated "
                            "once into data_dir/jwt_secret")
    jwt_ttl_seconds: int = Field(3600, ge=60, le=86400)
    refresh_ttl_seconds: int = Field(30 * 86400, ge=3600, le=365 * 86400)
    max_api_keys_per_account: int = Field(20, ge=1, le=10_000, description="active API keys one account may hold")

    def jwt_secret_value(self) -> str:
        """CALLGAUGE_JWT_SECRET, else the one in data_dir/jwt_secret (created once, mode 0600)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt_secret"
        if not path.exists():
            import os
            import secrets
            import tempfile

            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".jwt_secret.")  # mode 0600
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
            try:
                os.link(tmp, path)  # atomic and exclusive: whoever links first wins, all read the same
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        return path.read_text().strip()
