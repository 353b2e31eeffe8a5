"""Dagster definitions of the Loom pipeline: ``dagster dev -m dagster_project``."""

from dagster_project.definitions import defs

__all__ = ["defs"]
