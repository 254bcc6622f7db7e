"""Sharing results outside the store: portable model files, batch scoring, HTML reports, run transfer.

Each module does one job and only calls the core (never Qt): the CLI (``cli/share_cmds.py``) and the
GUI dialogs gather input and call these functions in a worker.
"""
