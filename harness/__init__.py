"""Evaluation and release-gate harness for fine-tuned transformer classifiers.

The library reads in the order data flows: ``profile`` -> ``data`` -> ``models`` -> ``training`` ->
``evaluation`` -> ``gates`` / ``onnx`` -> ``record`` -> ``report``; ``stages`` holds each stage as a function and
``run`` runs them (its ``STAGES`` table is the flow) for scripts and for the pytest plugin (``harness.plugin``), the
only module that imports pytest. Heavy libraries (torch, transformers, datasets) are imported inside functions so
``import harness`` and ``pytest --help`` stay fast.
"""

__version__ = "0.13.0"
