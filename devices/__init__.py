"""Device profiling layer: catalog, backends, measurement protocol, latency tables.

It takes ONNX files and returns measurements; it imports nothing from search code.
"""
