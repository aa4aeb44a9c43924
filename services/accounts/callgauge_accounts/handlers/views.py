"""The accounts read model, in memory, folded from the service's whole log at start and followed
after: accounts by id and by email, API keys by hash, sessions, last use of each key. Commands
wait until it reflects their own append before they answer (read-your-writes), so a revoked key
is refused by the very next Authenticate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from google.protobuf.message import Message

from callgauge_eventstore import PositionWaiter
from callgauge_proto.callgauge.accounts.v1 import events_pb2 as ev

from callgauge_accounts.domain import model


@dataclass
class ReadModel(PositionWaiter):
    accounts: dict[str, model.Account] = field(default_factory=dict)
    by_email: dict[str, str] = field(default_factory=dict)  # email -> account id (live accounts)
    key_by_hash: dict[str, tuple[str, str]] = field(default_factory=dict)  # hash -> (account id, key id)
    last_used: dict[str, datetime] = field(default_factory=dict)  # key id -> when
    sessions: dict[str, model.Session] = field(default_factory=dict)

    def apply(self, event: Message, at: datetime | None) -> None:
        if isinstance(event, ev.SessionStarted | ev.SessionRefreshed | ev.SessionRevoked):
            s = model.evolve_session(self.sessions.get(event.session_id), event, at)
            if s is not None:
                self.sessions[event.session_id] = s
            return
        if isinstance(event, ev.ApiKeyUsed):
            self.last_used[event.key_id] = at
            return
        account_id = getattr(event, "account_id", "")
        if not account_id or isinstance(event, ev.EmailClaimed | ev.EmailReleased):
            return
        before = self.accounts.get(account_id)
        after = model.evolve_account(before, event, at)
        if after is None:
            return
        self.accounts[account_id] = after
        if before is not None and self.by_email.get(before.email) == account_id:
            del self.by_email[before.email]
        if not after.deleted:
            self.by_email[after.email] = account_id
        if isinstance(event, ev.ApiKeyCreated):
            self.key_by_hash[event.key_hash] = (account_id, event.key_id)


    def live_account(self, account_id: str) -> model.Account | None:
        a = self.accounts.get(account_id)
        return a if a is not None and not a.deleted else None
