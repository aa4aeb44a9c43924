"""The AccountsService gRPC servicer: requests become commands and queries on AccountsApp. Errors
are raised, not answered here: the server's DomainErrorInterceptor (callgauge_platform.errors) maps
them."""

from __future__ import annotations

from callgauge_platform.timestamps import timestamp_of
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2 as pb
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2_grpc as pb_grpc

from callgauge_accounts.domain import model
from callgauge_accounts.handlers.app import AccountsApp, KeyInfo, Tokens


def account_pb(a: model.Account) -> pb.Account:
    return pb.Account(id=a.id, email=a.email, created_at=timestamp_of(a.created_at), updated_at=timestamp_of(a.updated_at))


def key_pb(k: KeyInfo) -> pb.ApiKey:
    key = k.key
    return pb.ApiKey(id=key.id, name=key.name, mode=key.mode, prefix=key.prefix, last4=key.last4,
                     created_at=timestamp_of(key.created_at), last_used_at=timestamp_of(k.last_used_at),
                     rate_limit_per_minute=key.rate_limit_per_minute)


def tokens_pb(t: Tokens) -> pb.Tokens:
    return pb.Tokens(access_token=t.access_token, refresh_token=t.refresh_token, expires_in=t.expires_in)


class AccountsServicer(pb_grpc.AccountsServiceServicer):
    def __init__(self, app: AccountsApp) -> None:
        self.app = app

    async def Register(self, request: pb.RegisterRequest, context) -> pb.Account:
        return account_pb(await self.app.register(request.email, request.password))

    async def Login(self, request: pb.LoginRequest, context) -> pb.Tokens:
        return tokens_pb(await self.app.login(request.email, request.password))

    async def Refresh(self, request: pb.RefreshRequest, context) -> pb.Tokens:
        return tokens_pb(await self.app.refresh(request.refresh_token))

    async def Authenticate(self, request: pb.AuthenticateRequest, context) -> pb.Principal:
        r = await self.app.authenticate(request.token, request.requested_mode)
        return pb.Principal(account_id=r.account_id, mode=r.mode, key_id=r.key_id, kind=r.kind,
                            rate_limit_per_minute=r.rate_limit_per_minute, session_id=r.session_id)

    async def GetAccount(self, request: pb.AccountRef, context) -> pb.Account:
        return account_pb(self.app.get_account(request.account_id))

    async def UpdateAccount(self, request: pb.UpdateAccountRequest, context) -> pb.Account:
        return account_pb(await self.app.update_account(request.account_id, request.email, request.password,
                                                        request.current_password, request.session_id))

    async def Logout(self, request: pb.LogoutRequest, context) -> pb.Empty:
        await self.app.end_session(request.account_id, request.session_id, "logout")
        return pb.Empty()

    async def DeleteAccount(self, request: pb.AccountRef, context) -> pb.Empty:
        await self.app.delete_account(request.account_id)
        return pb.Empty()

    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context) -> pb.CreatedApiKey:
        info, secret = await self.app.create_api_key(request.account_id, request.mode, request.name, request.rate_limit_per_minute)
        return pb.CreatedApiKey(key=key_pb(info), secret=secret)

    async def ListApiKeys(self, request: pb.AccountRef, context) -> pb.ListApiKeysResponse:
        return pb.ListApiKeysResponse(keys=[key_pb(k) for k in self.app.list_api_keys(request.account_id)])

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context) -> pb.Empty:
        await self.app.revoke_api_key(request.account_id, request.key_id)
        return pb.Empty()
