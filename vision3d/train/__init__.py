"""Shared training utilities (resumable state) for the scripts in ``scripts/train_*.py``."""
