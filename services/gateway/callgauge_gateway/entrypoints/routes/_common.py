"""What the resource routers share: the auth dependency, paging (page/perPage canonical,
limit/offset accepted), and a route class that reports body validation errors at the location a
person reads in their request (["steps", 1, "actions", 0, "dial_destination"])."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from callgauge_gateway.entrypoints.auth import Principal, authenticate

Auth = Annotated[Principal, Depends(authenticate)]
_ACTION_TYPES = {"call", "register", "wait_for_calls", "load"}


def _normalize(loc: tuple | list) -> list:
    """Drop the leading "body" and the action-type tag pydantic puts after ("actions", i)."""
    out = list(loc)
    if out and out[0] == "body":
        out = out[1:]
    for i in range(len(out) - 2, -1, -1):
        if (i >= 2 and out[i - 2] == "actions" and isinstance(out[i - 1], int) and out[i] in _ACTION_TYPES):
            del out[i]
    return out


class BodyLocRoute(APIRoute):
    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request):
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = []
                for e in exc.errors():
                    e = dict(e)
                    if tuple(e.get("loc", ()))[:1] == ("body",):
                        e["loc"] = tuple(_normalize(e["loc"]))
                    errors.append(e)
                raise RequestValidationError(errors, body=exc.body) from None

        return route


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int


def paging(page: Annotated[int | None, Query(ge=1, le=100_000)] = None,
           per_page: Annotated[int | None, Query(alias="perPage", ge=1, le=100)] = None,
           limit: Annotated[int | None, Query(ge=1, le=100, description="alias of perPage")] = None,
           offset: Annotated[int | None, Query(ge=0, le=10_000_000,
                                               description="items to skip; rounded down to a page")] = None) -> Paging:
    size = per_page or limit or 25
    if page is None:
        page = (offset or 0) // size + 1
    return Paging(page, size)


Page = Annotated[Paging, Depends(paging)]

