"""ONNX export and validation, in the order the stage runs them.

``bundle`` exports the fine-tuned model (or reads a bundle built elsewhere) with its manifest; ``checks``
reads the graph (checker, axes, input names, manifest, tokenizer); ``parity`` compares ONNX Runtime with
PyTorch logits; ``perf`` measures int8 agreement, latency and sizes; ``stage`` runs them for one gate run.
"""
