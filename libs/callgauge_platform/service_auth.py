"""Who may call which internal gRPC method: every call between services carries a short-lived
service token, checked by one server interceptor against one access-control table.

- Each service identity (gateway, accounts, runs, billing, media-engine, and `operator` for admin
  tooling) has an Ed25519 key pair. A caller signs a JWT (EdDSA) with its private key:
  `iss` = its identity (also the `kid` header), `aud` = the service it calls, `exp` a few minutes
  ahead. It travels in the `authorization: Bearer …` metadata of every call.
- The called service verifies it against the public key of the claimed identity (a signature
  made with another key, an expired token, a token for another audience: UNAUTHENTICATED), then
  looks the method up in :data:`ACL` (a method not listed, or a caller not allowed:
  PERMISSION_DENIED). Only the standard health service answers without a token.
- Keys live in one directory (`CALLGAUGE_SERVICE_KEYS_DIR`): `<identity>.key` (private, 0600) for
  the identity this process signs as, `<identity>.pub` for every identity it accepts. Under the
  embedded default (setting empty) it is `<data_dir>/service-keys/`, generated once by the first
  process that needs it; an operator-set directory is never written to: its keys must be there
  (`callgauge service-keys DIR` makes a set; compose and k8s mount them).
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from callgauge_platform.logs import get_logger

log = get_logger(__name__)

IDENTITIES = ("gateway", "accounts", "runs", "billing", "media-engine", "operator")
SERVICES = ("accounts", "runs", "billing")  # the identities that serve gRPC
HEALTH_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})
METADATA_KEY = "authorization"

_A = "/callgauge.accounts.v1.AccountsService/"
_R = "/callgauge.runs.v1.RunsService/"
_M = "/callgauge.runs.v1.MonitorService/"
_B = "/callgauge.billing.v1.BillingService/"
_GATEWAY = frozenset({"gateway"})

# service -> full method name -> the identities allowed to call it. A method missing here is refused.
ACL: dict[str, dict[str, frozenset[str]]] = {
    "accounts": {
        **{_A + m: _GATEWAY for m in (
            "Register", "Login", "Refresh", "Logout", "Authenticate", "GetAccount", "UpdateAccount",
            "DeleteAccount", "CreateApiKey", "ListApiKeys", "RevokeApiKey")},
    },
    "runs": {
        **{_R + m: _GATEWAY for m in (
            "CreateProject", "ListProjects", "GetProject", "UpdateProject", "DeleteProject",
            "CreateTest", "GetTest", "ListTests", "UpdateTest", "DeleteTest",
            "CreateRegistrar", "GetRegistrar", "ListRegistrars", "UpdateRegistrar", "DeleteRegistrar",
            "CreateCredentialPool", "GetCredentialPool", "ListCredentialPools", "UpdateCredentialPool",
            "DeleteCredentialPool", "StartRun", "GetRun", "ListRuns", "StopRun", "RevokeKioskLinks",
            "GetRunByKioskToken", "GetRunSeconds", "ListRunCalls")},
        # SIP passwords go to the engine that places the calls, and to no one else.
        _R + "GetRunCredentials": frozenset({"media-engine"}),
        **{_M + m: _GATEWAY for m in (
            "CreateProbe", "ListProbes", "GetProbe", "UpdateProbe", "DeleteProbe", "GetProbeHistory",
            "GetProbeChanges", "AckProbeChanges", "CreateWebhook", "ListWebhooks", "DeleteWebhook",
            "ListWebhookDeliveries", "CompareRuns")},
    },
    "billing": {
        **{_B + m: _GATEWAY for m in ("GetWallet", "SetAutoTopUp", "GetUsage", "ListUsage")},
        # a user's top-up is paid through the payment provider; only the operator credits without paying
        _B + "TopUp": _GATEWAY,
        _B + "Credit": frozenset({"operator"}),
        # a run's money is held and given back by the runs service only
        _B + "Reserve": frozenset({"runs"}),
        _B + "Release": frozenset({"runs"}),
        # a manual charge (corrections) is an operator's act; metering goes through Kafka events
        _B + "Charge": frozenset({"operator"}),
    },
}


class ServiceAuthError(RuntimeError):
    """Key material missing or unreadable: the process cannot take part in internal calls."""


# ---------------------------------------------------------------------------------------- keys


def keys_dir(settings) -> tuple[Path, bool]:
    """The key directory and whether this process may create keys in it (embedded default only)."""
    if settings.service_keys_dir:
        return Path(settings.service_keys_dir), False
    return Path(settings.data_dir) / "service-keys", True


def generate_keys(directory: Path, identities: tuple[str, ...] = IDENTITIES) -> list[str]:
    """Create the key pairs missing in `directory` (mode 0700, files 0600); the identities made.
    Safe against concurrent callers (a lock file), so every process sees one pair per identity."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    made: list[str] = []
    with open(directory / ".lock", "a") as lock:
        os.chmod(directory / ".lock", 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        for ident in identities:
            priv, pub = directory / f"{ident}.key", directory / f"{ident}.pub"
            if priv.exists() and pub.exists():
                continue
            key = Ed25519PrivateKey.generate()
            _write_private(priv, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            _write_private(pub, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
            made.append(ident)
    return made


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class ServiceKeys:
    """The key material one process holds: its private key(s) and the public keys of every identity."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_settings(cls, settings) -> ServiceKeys:
        directory, may_create = keys_dir(settings)
        if may_create:
            generate_keys(directory)
        elif not directory.is_dir():
            raise ServiceAuthError(f"CALLGAUGE_SERVICE_KEYS_DIR={directory} is not a directory "
                                   "(make the keys with `callgauge service-keys DIR`)")
        return cls(directory)

    def private_key(self, identity: str) -> Ed25519PrivateKey:
        path = self.directory / f"{identity}.key"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ServiceAuthError(f"no usable private key for service identity {identity!r} at {path}: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ServiceAuthError(f"{path}: not an Ed25519 private key")
        return key

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        out: dict[str, Ed25519PublicKey] = {}
        for ident in IDENTITIES:
            path = self.directory / f"{ident}.pub"
            if not path.exists():
                continue
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except ValueError as exc:
                raise ServiceAuthError(f"{path}: {exc}") from None
            if isinstance(key, Ed25519PublicKey):
                out[ident] = key
        return out


# ---------------------------------------------------------------------------------------- tokens


class ServiceTokens:
    """Signs this process's tokens, one per audience, re-signed when a third of the lifetime is left."""

    def __init__(self, identity: str, private_key: Ed25519PrivateKey, ttl_s: int = 300) -> None:
        if identity not in IDENTITIES:
            raise ValueError(f"unknown service identity {identity!r}")
        self.identity, self._key, self.ttl_s = identity, private_key, ttl_s
        self._cache: dict[str, tuple[str, float]] = {}

    @classmethod
    def for_settings(cls, settings, identity: str) -> ServiceTokens:
        return cls(identity, ServiceKeys.for_settings(settings).private_key(identity),
                   settings.service_token_ttl_seconds)

    def token(self, audience: str) -> str:
        now = time.time()
        hit = self._cache.get(audience)
        if hit is not None and hit[1] - now > self.ttl_s / 3:
            return hit[0]
        exp = now + self.ttl_s
        tok = jwt.encode({"iss": self.identity, "aud": audience, "iat": int(now), "exp": int(exp),
                          "jti": uuid.uuid4().hex}, self._key, algorithm="EdDSA", headers={"kid": self.identity})
        self._cache[audience] = (tok, exp)
        return tok


class ClientAuthInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Attaches this process's token for the called service to every call."""

    def __init__(self, tokens: ServiceTokens, audience: str) -> None:
        self._tokens, self._audience = tokens, audience

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        md = [(k, v) for k, v in (client_call_details.metadata or ()) if k != METADATA_KEY]
        md.append((METADATA_KEY, "Bearer " + self._tokens.token(self._audience)))
        return await continuation(client_call_details._replace(metadata=md), request)


class TokenVerifier:
    """Checks a token for one service: signature by the key of its `kid`, audience, expiry.
    Verified tokens are remembered (bounded) until they expire, so a steady caller costs one
    signature check per token, not per call."""

    def __init__(self, service: str, public_keys: dict[str, Ed25519PublicKey], leeway_s: int = 30,
                 cache_size: int = 256) -> None:
        self.service, self._keys, self._leeway = service, public_keys, leeway_s
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._size = cache_size

    def identity_of(self, token: str) -> str:
        """The caller's identity; raises jwt.InvalidTokenError."""
        now = time.time()
        hit = self._seen.get(token)
        if hit is not None and hit[1] + self._leeway > now:
            self._seen.move_to_end(token)
            return hit[0]
        kid = jwt.get_unverified_header(token).get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidTokenError("unknown service identity")
        claims = jwt.decode(token, key, algorithms=["EdDSA"], audience=self.service, issuer=kid,
                            leeway=self._leeway, options={"require": ["exp", "iat", "iss", "aud"]})
        self._seen[token] = (kid, float(claims["exp"]))
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return kid


def _refuse(code: grpc.StatusCode, message: str):
    async def refuse(request, context: grpc.aio.ServicerContext):
        await context.abort(code, message)

    return refuse


class ServerAuthInterceptor(grpc.aio.ServerInterceptor):
    """The one check every internal call passes: an authentic token for this service, and a caller
    that :data:`ACL` allows for the method."""

    def __init__(self, service: str, verifier: TokenVerifier, acl: dict[str, frozenset[str]] | None = None) -> None:
        self.service, self._verifier = service, verifier
        self._acl = ACL[service] if acl is None else acl

    def decide(self, method: str, metadata) -> tuple[grpc.StatusCode, str, str]:
        """(status, message, caller); status OK lets the call through."""
        if method in HEALTH_METHODS:
            return grpc.StatusCode.OK, "", ""
        header = next((v for k, v in (metadata or ()) if k == METADATA_KEY), None)
        if not isinstance(header, str) or not header.startswith("Bearer "):
            return grpc.StatusCode.UNAUTHENTICATED, "a service token is required", ""
        try:
            caller = self._verifier.identity_of(header[len("Bearer "):].strip())
        except jwt.InvalidTokenError as exc:
            return grpc.StatusCode.UNAUTHENTICATED, f"invalid service token: {exc}", ""
        if caller not in self._acl.get(method, ()):
            return grpc.StatusCode.PERMISSION_DENIED, f"{caller} may not call {method}", caller
        return grpc.StatusCode.OK, "", caller

    async def intercept_service(self, continuation, handler_call_details):
        code, message, caller = self.decide(handler_call_details.method, handler_call_details.invocation_metadata)
        if code == grpc.StatusCode.OK:
            return await continuation(handler_call_details)
        log.warning("grpc_call_refused", service=self.service, method=handler_call_details.method,
                    code=code.name, caller=caller or None, reason=message)
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return grpc.unary_unary_rpc_method_handler(_refuse(code, message),
                                                   request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)


def server_interceptor(settings, service: str) -> ServerAuthInterceptor:
    keys = ServiceKeys.for_settings(settings)
    return ServerAuthInterceptor(service, TokenVerifier(service, keys.public_keys()))


def client_interceptor(settings, identity: str, service: str) -> ClientAuthInterceptor:
    return ClientAuthInterceptor(ServiceTokens.for_settings(settings, identity), service)
