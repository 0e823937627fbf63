"""Sluice's domain library, shared by the Lambda functions and the training code (a Lambda layer)."""
