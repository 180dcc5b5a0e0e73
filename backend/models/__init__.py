"""All tables, imported here so SQLModel.metadata knows every one."""

from backend.models.api_key import ApiKey
from backend.models.job import (
    OPEN_ASSIGNMENT_STATUSES,
    TERMINAL_JOB_STATUSES,
    Assignment,
    AssignmentStatus,
    Job,
    JobStatus,
    JobType,
)
from backend.models.ledger import Account, AccountKind, EmissionRun, EntryKind, LedgerEntry, LedgerTransaction
from backend.models.user import RefreshToken, Role, User
from backend.models.worker import AdminAction, Worker, WorkerStatus, WorkerUptime

__all__ = [
    "OPEN_ASSIGNMENT_STATUSES", "TERMINAL_JOB_STATUSES", "Account", "AccountKind", "AdminAction", "ApiKey",
    "Assignment", "AssignmentStatus", "EmissionRun", "EntryKind", "Job", "JobStatus", "JobType",
    "LedgerEntry", "LedgerTransaction", "RefreshToken", "Role", "User", "Worker", "WorkerStatus",
    "WorkerUptime",
]
