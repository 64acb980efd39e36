"""The Textual app (the only package that imports textual): `TunerApp` over a `Backend`."""
