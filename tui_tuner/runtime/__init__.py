"""The runtime: runs as processes, zero-code adapters, the scheduler, the session, headless mode.

Processes, files and signals; never textual.
"""
