"""Learned optical-flow networks (one file per model) and the building blocks they share (``blocks``)."""
