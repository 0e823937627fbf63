"""The training job of a use case (SageMaker script mode). Uses scikit-learn; never imported by Lambda code."""
