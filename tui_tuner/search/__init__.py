"""The search: the space and its parameters, sampling, regions, strategies, and the pure deciders
(early stopping's rules, PBT, auto-k) and measured importance. No processes, no files."""
