"""Small reusable components (lowercase functions)."""
