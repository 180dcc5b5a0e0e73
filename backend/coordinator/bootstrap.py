"""What the coordinator needs before serving: the schema, the admin account, the system accounts."""

from __future__ import annotations

import logging

from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_engine, init_db

log = logging.getLogger("openmesh.bootstrap")


def prepare_database() -> None:
    engine = get_engine()
    init_db(engine)
    from backend.coordinator.auth.service import ensure_admin
    from backend.coordinator.ledger.service import ensure_system_accounts

    with Session(engine, expire_on_commit=False) as session:
        ensure_admin(session, get_settings())
        ensure_system_accounts(session)
        session.commit()
