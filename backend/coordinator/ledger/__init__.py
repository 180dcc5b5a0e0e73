"""Coordinator domain: ledger."""
