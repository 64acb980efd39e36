"""Screens: the main screen, dialogs and help."""
