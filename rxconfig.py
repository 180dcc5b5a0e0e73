"""Reflex configuration for the OpenMesh Pool dashboard (ports and origins come from the environment).

DASHBOARD_FRONTEND_PORT (default 3000) and DASHBOARD_BACKEND_PORT (default 8000) choose the ports;
REFLEX_API_URL is the backend origin the browser uses (baked into the built frontend).
"""

import os

import reflex as rx

_ports = {}
if os.environ.get("DASHBOARD_FRONTEND_PORT"):
    # Only when asked: Reflex refuses any frontend port in --backend-only mode.
    _ports["frontend_port"] = int(os.environ["DASHBOARD_FRONTEND_PORT"])
_backend_port = int(os.environ.get("DASHBOARD_BACKEND_PORT", "8000"))

config = rx.Config(
    app_name="dashboard",
    backend_port=_backend_port,
    api_url=os.environ.get("REFLEX_API_URL", f"http://127.0.0.1:{_backend_port}"),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(appearance="light", accent_color="teal", radius="medium"))
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
    **_ports,
)
