"""OpenMesh Pool worker runtime: encode texts locally, sign results, talk to the coordinator over HTTP.

Only this package imports model libraries (onnxruntime, tokenizers, torch, sentence-transformers);
the coordinator and gateway never do. Heavy imports happen lazily inside `worker.model`.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
