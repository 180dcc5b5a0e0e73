"""Reflex configuration for the OpenMesh Pool dashboard (ports and origins come from the environment)."""

import os

import reflex as rx

_frontend_port = int(os.environ.get("DASHBOARD_FRONTEND_PORT", os.environ.get("FRONTEND_PORT", "3000")))
_backend_port = int(os.environ.get("DASHBOARD_BACKEND_PORT", os.environ.get("BACKEND_PORT", "8000")))

config = rx.Config(
    app_name="dashboard",
    frontend_port=_frontend_port,
    backend_port=_backend_port,
    # The browser reaches the Reflex backend (state websocket) here; the build hard-codes it.
    api_url=os.environ.get("REFLEX_API_URL", f"http://127.0.0.1:{_backend_port}"),
    telemetry_enabled=False,
    show_built_with_reflex=False,
)
