"""Web viewers (viser) and their static export."""
