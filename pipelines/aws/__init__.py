"""Regula's calls to AWS itself: S3 helpers, the pipeline in SageMaker (upsert, start, retry, status), what an AWS
error means."""
