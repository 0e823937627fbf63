"""The scoring domain: ONNX models served from the deployment state, routing, fallbacks, prediction log, feedback.

Only numpy, onnxruntime and pydantic (plus botocore for the AWS adapters) are imported on this path:
never scikit-learn, scipy or pandas.
"""
