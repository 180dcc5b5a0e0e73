"""Coordinator domain: jobs."""
