"""Coordinator domain: admin."""
