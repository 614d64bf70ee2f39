"""Learned depth networks: FutureDepth (video) and PrimeDepth (diffusion preimage + refiner)."""
