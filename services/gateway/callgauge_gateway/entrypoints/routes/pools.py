"""A project's registrars (SIP targets, named by tests as `target_pool`) and credential pools (SIP
users, named as `credential_pool`). Passwords are write-only: answers say `hasPassword`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from callgauge_gateway.domain.proto_json import to_json
from callgauge_gateway.entrypoints.envelope import ok, page
from callgauge_gateway.entrypoints.deps import Runs
from callgauge_gateway.entrypoints.routes._common import Auth, BodyLocRoute, Page
from callgauge_gateway.domain.schemas import (
    CredentialIn, CredentialPoolIn, CredentialPoolPatch, RegistrarIn, RegistrarPatch,
)
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["registrars & credentials"],
                   route_class=BodyLocRoute)


def _registrar(r: pb.Registrar) -> dict:
    return to_json(r)


def _pool(p: pb.CredentialPool) -> dict:
    return to_json(p)


def _res(who, project_id: str, rid: str = "") -> pb.GetResourceRequest:
    return pb.GetResourceRequest(account_id=who.account_id, mode=who.mode, project_id=project_id, id=rid)


def _list(who, project_id: str, paging) -> pb.ListResourcesRequest:
    return pb.ListResourcesRequest(account_id=who.account_id, mode=who.mode, project_id=project_id,
                                   page=paging.page, per_page=paging.per_page)


def _registrar_req(who, project_id: str, body, rid: str = "") -> pb.RegistrarRequest:
    req = pb.RegistrarRequest(account_id=who.account_id, mode=who.mode, project_id=project_id, registrar_id=rid)
    for name, value in body.model_dump(exclude_none=True).items():
        setattr(req, name, value)
    return req


@router.post("/registrars", status_code=201, summary="Add a registrar (SIP target)")
async def create_registrar(project_id: str, body: RegistrarIn, who: Auth, runs: Runs):
    return ok(_registrar(await runs.CreateRegistrar(_registrar_req(who, project_id, body))), 201)


@router.get("/registrars", summary="List the project's registrars")
async def list_registrars(project_id: str, who: Auth, runs: Runs, paging: Page):
    resp = await runs.ListRegistrars(_list(who, project_id, paging))
    return page([_registrar(r) for r in resp.registrars], paging.page, paging.per_page, resp.total)


@router.get("/registrars/{registrar_id}", summary="Get a registrar")
async def get_registrar(project_id: str, registrar_id: str, who: Auth, runs: Runs):
    return ok(_registrar(await runs.GetRegistrar(_res(who, project_id, registrar_id))))


@router.patch("/registrars/{registrar_id}", summary="Change a registrar")
async def update_registrar(project_id: str, registrar_id: str, body: RegistrarPatch, who: Auth, runs: Runs):
    return ok(_registrar(await runs.UpdateRegistrar(
        _registrar_req(who, project_id, body, registrar_id))))


@router.delete("/registrars/{registrar_id}", status_code=204,
               summary="Delete a registrar (409 while a test names it)")
async def delete_registrar(project_id: str, registrar_id: str, who: Auth, runs: Runs):
    await runs.DeleteRegistrar(_res(who, project_id, registrar_id))
    return Response(status_code=204)


def _creds(items: list[CredentialIn]) -> list[pb.CredentialIn]:
    out = []
    for c in items:
        ci = pb.CredentialIn(username=c.username, auth_username=c.authUsername or "", domain=c.domain or "")
        if c.password is not None:
            ci.password = c.password
        out.append(ci)
    return out


@router.post("/credential-pools", status_code=201, summary="Add a credential pool (SIP users)")
async def create_pool(project_id: str, body: CredentialPoolIn, who: Auth, runs: Runs):
    p = await runs.CreateCredentialPool(pb.CredentialPoolRequest(
        account_id=who.account_id, mode=who.mode, project_id=project_id, name=body.name,
        set_credentials=True, credentials=_creds(body.credentials)))
    return ok(_pool(p), 201)


@router.get("/credential-pools", summary="List the project's credential pools (never the passwords)")
async def list_pools(project_id: str, who: Auth, runs: Runs, paging: Page):
    resp = await runs.ListCredentialPools(_list(who, project_id, paging))
    return page([_pool(p) for p in resp.pools], paging.page, paging.per_page, resp.total)


@router.get("/credential-pools/{pool_id}", summary="Get a credential pool (never the passwords)")
async def get_pool(project_id: str, pool_id: str, who: Auth, runs: Runs):
    return ok(_pool(await runs.GetCredentialPool(_res(who, project_id, pool_id))))


@router.patch("/credential-pools/{pool_id}",
              summary="Change a pool; a user sent without a password keeps the stored one")
async def update_pool(project_id: str, pool_id: str, body: CredentialPoolPatch, who: Auth, runs: Runs):
    req = pb.CredentialPoolRequest(account_id=who.account_id, mode=who.mode, project_id=project_id, pool_id=pool_id)
    if body.name is not None:
        req.name = body.name
    if body.credentials is not None:
        req.set_credentials = True
        req.credentials.extend(_creds(body.credentials))
    return ok(_pool(await runs.UpdateCredentialPool(req)))


@router.delete("/credential-pools/{pool_id}", status_code=204,
               summary="Delete a credential pool (409 while a test names it)")
async def delete_pool(project_id: str, pool_id: str, who: Auth, runs: Runs):
    await runs.DeleteCredentialPool(_res(who, project_id, pool_id))
    return Response(status_code=204)
