"""Request and response bodies of the identity routes (auth, users, API keys)."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Meta(BaseModel):
    requestId: str


class Envelope(BaseModel, Generic[T]):
    data: T
    meta: Meta


class Pagination(BaseModel):
    page: int
    perPage: int
    total: int
    totalPages: int


class PageMeta(Meta):
    pagination: Pagination


class ListEnvelope(BaseModel, Generic[T]):
    data: list[T]
    meta: PageMeta


class Credentials(_Strict):
    email: str = Field(min_length=3, max_length=254, examples=["ops@example.com"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery staple"],
                          description="10 to 256 characters, at least 4 different ones, not your email")


class RefreshIn(_Strict):
    refreshToken: str = Field(min_length=1, max_length=1024, examples=["cgr_0193…"])


class UserUpdate(_Strict):
    email: str | None = Field(None, min_length=3, max_length=254, examples=["noc@example.com"])
    password: str | None = Field(None, min_length=1, max_length=1024)
    currentPassword: str = Field(min_length=1, max_length=1024, description="required for any change")


class ApiKeyIn(_Strict):
    name: str = Field(min_length=1, max_length=100, examples=["CI pipeline"])
    mode: Literal["live", "test"] = Field("live", description="test keys see only test-mode data, never charge")
    rateLimitPerMinute: int | None = Field(None, ge=1, le=100_000,
                                           description="this key's limit, at most the operator's maximum "
                                           "(CALLGAUGE_API_KEY_RATE_LIMIT_MAX, 422 above); default "
                                           "CALLGAUGE_RATE_LIMIT_PER_MINUTE. The account's total across its keys "
                                           "is bounded too (CALLGAUGE_ACCOUNT_RATE_LIMIT_PER_MINUTE)")


class UserOut(BaseModel):
    id: str
    email: str
    createdAt: str | None = None
    updatedAt: str | None = None


class TokensOut(BaseModel):
    accessToken: str
    refreshToken: str
    expiresIn: int = Field(description="seconds the access token is valid")
    tokenType: Literal["Bearer"] = "Bearer"


class ApiKeyOut(BaseModel):
    id: str
    name: str
    mode: Literal["live", "test"]
    prefix: str = Field(examples=["cgk_live_Ab3x"])
    last4: str
    createdAt: str | None = None
    lastUsedAt: str | None = Field(None, description="to the minute")
    rateLimitPerMinute: int | None = None


class CreatedApiKeyOut(ApiKeyOut):
    key: str = Field(description="the whole key; shown this once, store it now", examples=["cgk_live_…"])
