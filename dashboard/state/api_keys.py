"""ApiKeysState: a client's keys (create shown once, list, revoke) and the gateway playground."""

from __future__ import annotations

import json

import reflex as rx

from dashboard import api
from dashboard.state import format as fmt
from dashboard.state.auth import AuthState


class ApiKeysState(AuthState):
    """API keys page (clients)."""

    keys: list[dict[str, str]] = []
    loaded: bool = False
    error: str = ""
    notice: str = ""
    new_key: str = ""  # the full secret, shown once right after creation, cleared on leaving the page
    new_key_name: str = ""
    # playground
    pg_key: str = ""
    pg_kind: str = "embed"
    pg_text: str = "OpenMesh Pool verifies every answer on two workers."
    pg_texts: str = "first document\nsecond document"
    pg_busy: bool = False
    pg_error: str = ""
    pg_answer: str = ""
    pg_receipt: str = ""

    @rx.event
    def clear_notice(self):
        """A page opened anew shows no message left over from an earlier visit."""
        self.notice = ""

    @rx.event
    async def load(self):
        if not self.is_authenticated:
            return None
        try:
            items = await self.api().api_keys()
            self.keys = [
                {
                    "id": fmt.text(k.get("id")),
                    "name": fmt.text(k.get("name")),
                    "prefix": fmt.text(k.get("prefix")),
                    "created_at": fmt.when(k.get("created_at")),
                    "last_used_at": fmt.when(k.get("last_used_at")),
                    "revoked_at": fmt.when(k.get("revoked_at")) if k.get("revoked_at") else "",
                    "active": "" if k.get("revoked_at") else "yes",
                }
                for k in items
            ]
            self.error = ""
        except api.SessionExpired:
            return await self.expire()
        except api.ApiError as exc:
            self.keys = []
            self.error = exc.message
        self.loaded = True
        return None

    @rx.event
    def on_leave(self):
        self.new_key = ""

    @rx.event
    async def create(self, form: dict):
        name = str(form.get("name", "")).strip()
        if not name:
            self.error = "Give the key a name"
            return None
        try:
            created = await self.api().create_api_key(name)
            self.new_key = str(created.get("key", ""))
            self.new_key_name = name
            self.pg_key = self.new_key
            self.error = ""
            self.notice = ""
        except api.SessionExpired:
            return await self.expire()
        except api.ApiError as exc:
            self.error = exc.message
        return ApiKeysState.load

    @rx.event
    def dismiss_new_key(self):
        self.new_key = ""

    @rx.event
    async def revoke(self, key_id: str):
        return await self._action(lambda c: c.revoke_api_key(key_id), f"Key {key_id} revoked") or ApiKeysState.load

    @rx.event
    def set_pg_key(self, value: str):
        self.pg_key = value

    @rx.event
    def set_pg_kind(self, value: str):
        self.pg_kind = value

    @rx.event
    def set_pg_text(self, value: str):
        self.pg_text = value

    @rx.event
    def set_pg_texts(self, value: str):
        self.pg_texts = value

    @rx.event
    async def send(self):
        if not self.pg_key.strip():
            self.pg_error = "Paste an API key (it is shown only once, when created)"
            return
        self.pg_busy = True
        self.pg_error = ""
        self.pg_answer = ""
        self.pg_receipt = ""
        yield
        if self.pg_kind == "embed":
            payload: dict = {"text": self.pg_text}
        else:
            payload = {"query": self.pg_text, "texts": [t for t in self.pg_texts.splitlines() if t.strip()]}
        try:
            data = await api.playground(self.pg_key.strip(), self.pg_kind, payload)
            output = data.get("output") or {}
            if "embedding" in output:
                emb = output["embedding"]
                head = ", ".join(f"{x:.4f}" for x in emb[:8])
                self.pg_answer = f"embedding: {len(emb)} dimensions [{head}, …]"
            else:
                self.pg_answer = json.dumps(output, ensure_ascii=False)
            receipt = {k: v for k, v in data.items() if k != "output"}
            self.pg_receipt = json.dumps(receipt, indent=2, ensure_ascii=False)
        except api.ApiError as exc:
            self.pg_error = f"{exc.status or ''} {exc.message}".strip()
        self.pg_busy = False
        yield ApiKeysState.load  # the key's "last used" moves with the call just made
