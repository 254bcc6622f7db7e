"""Reusable widgets shared by pages (no page logic here)."""
