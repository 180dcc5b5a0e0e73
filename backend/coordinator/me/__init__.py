"""Coordinator domain: me."""
