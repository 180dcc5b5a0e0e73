"""Per-page states; each inherits AuthState."""
