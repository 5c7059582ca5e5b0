"""Opaque, time-ordered identifiers."""

from __future__ import annotations

import secrets
import time


def new_id() -> str:
    """A 32-hex-digit id: 48 bits of milliseconds then 80 random bits, so ids sort by creation."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.randbits(80):020x}"
