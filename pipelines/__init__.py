"""Staged pipelines: one module per job, built from library stages and run by ``vision3d.runner``."""
