"""HiGHS, quietly: one place that makes a solver instance for every exact model (staffing, siting).

Why here: the staffing proposal (``grid/``) and the siting models (``analysis/``) both need it,
and the ground floor is the one both may import.
"""
from __future__ import annotations

import os
import sys

import highspy


def new_solver() -> highspy.Highs:
    """A silent HiGHS instance: its constructor prints a banner on the C-level stdout,
    which would corrupt `--json` output, so that descriptor is muted while it runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    return h
