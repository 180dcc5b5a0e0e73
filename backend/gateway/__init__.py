"""The public gateway: /v1/embed, /v1/rank and the client-compatible routes."""
