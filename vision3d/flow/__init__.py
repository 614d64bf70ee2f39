"""Optical flow: classical baselines (OpenCV), learned methods, metrics and visualisation."""
