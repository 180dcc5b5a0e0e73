"""`python -m worker` → the worker CLI (keygen, register, run, bench)."""

from worker.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
