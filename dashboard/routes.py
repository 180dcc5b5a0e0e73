"""Route constants: every page path lives here."""

LOGIN = "/login"
REGISTER = "/register"
HOME = "/"
WORKERS = "/workers"
JOBS = "/jobs"
JOB_DETAIL = "/jobs/[job_id]"
FINANCE = "/finance"
HEALTH = "/health"
API_KEYS = "/api-keys"


def home_for(role: str) -> str:
    """The landing page for a role after login."""
    return {"admin": WORKERS, "worker_owner": WORKERS, "client": API_KEYS}.get(role, FINANCE)
