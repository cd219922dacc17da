"""The fast forms a loaded pose network runs in, apart from the network definitions.

fold.py (BatchNorm and input normalisation folded into the convolutions), onednn.py (the
folded ConvNeXtPose as packed oneDNN calls), device.py (device choice, heap setting),
model.py (`InferenceModel`: picks the form; TorchScript, torch.compile, onnxruntime).
"""
