"""Coordinator domain: emission."""
