"""The coordinator service: auth, workers, jobs, verification, ledger, emission, admin."""
