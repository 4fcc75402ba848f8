"""Learned baselines: what each asset and conduit normally does, learnt, then protected."""
