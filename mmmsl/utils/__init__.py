"""Plumbing: safe checkpoint loading (imported first by ``mmmsl``),
seeding, and the CLI's distributed set-up."""
from . import compat  # noqa: F401  (safe checkpoint loading)
from .launch import setup_distributed
from .seeding import ProcessRNG

__all__ = ['setup_distributed', 'ProcessRNG']
