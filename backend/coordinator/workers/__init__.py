"""Coordinator domain: workers."""
