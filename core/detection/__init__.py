"""Person detectors: the typed API (Detection, Detector, errors), the ONNX CNN detectors and
their weights, the factory, and a detector in its own thread."""
