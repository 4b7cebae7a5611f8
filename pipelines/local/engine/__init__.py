"""Runs any SageMaker pipeline definition JSON on this machine: steps, expressions, retries, the step cache, jobs as
processes, checkpoints. Imports nothing Regula-specific: what a Regula run adds (its console lines, its step code
check) is passed in."""
