"""The models: frozen backbones, trained heads, captioner and match scorer, run on NumPy and ONNX Runtime.

Imports go one way: ``shipped`` (where the files live), ``onnx_runtime``, ``heads``, ``vocab`` and
``backbones`` need no other model module; ``top`` builds on ``backbones``; ``encoder`` (the JointEncoder
seam and its registry) on all of those; ``captioner`` and ``scorer`` read what an encoder outputs.
"""
