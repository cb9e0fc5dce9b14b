"""Training (the ``[train]`` extra: torch, transformers, onnx): ``train`` fits the network, ``export``
writes ONNX (int8), ``tune`` picks each technique's detector and calibration on held-out articles,
``build`` runs them end to end into a model folder with its card. The runtime never imports this."""
