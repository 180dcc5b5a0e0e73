"""Coordinator domain: auth."""
