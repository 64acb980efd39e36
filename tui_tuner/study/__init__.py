"""The study on disk: its store (SQLite), queue, lock, run directories, verdicts, the decision log,
what the user turned on, export and recover."""
