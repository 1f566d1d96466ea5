"""Experiment trackers: `trl.report_to: [tensorboard]` (or trackio, wandb, ...) in a recipe or with
`--set 'trl.report_to=[tensorboard]'`. transformers' own callbacks do the logging; r1cli only checks,
before anything loads, that each tracker's package is installed, and points the files into OUT:

    tensorboard  event files in OUT/tensorboard/ (written in OUT.partial/tensorboard/, so they move with the
                 rename; a resumed run adds a new event file beside the old ones). transformers would put
                 them under TRL's output_dir, which r1cli deletes at the end. TENSORBOARD_LOGGING_DIR, when
                 set, wins.
    wandb        offline unless WANDB_MODE says otherwise (no network by default); files in ./wandb as usual
    trackio      its own local store (TRACKIO_DIR, else trackio's default)

metrics.jsonl is written either way, and is all `r1 report` reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from r1cli.errors import UserError

# the tracker's name in report_to -> the r1cli extra that installs its package
EXTRAS = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}


def requested(report_to) -> list[str]:
    if report_to is None or report_to in ("none", "all"):
        return []
    return [report_to] if isinstance(report_to, str) else list(report_to)


def check(report_to) -> None:
    """One line, before any model loads, for a tracker transformers does not know or whose package is missing."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK, get_available_reporting_integrations

    available = get_available_reporting_integrations()
    for name in requested(report_to):
        if name not in INTEGRATION_TO_CALLBACK:
            raise UserError(f"trl.report_to names {name!r}, which transformers does not know "
                            f"(valid: {', '.join(sorted(INTEGRATION_TO_CALLBACK))})")
        if name not in available:
            how = f"pip install 'r1cli[{EXTRAS[name]}]'" if name in EXTRAS else f"install the {name} package"
            raise UserError(f"trl.report_to names {name!r}, whose package is not installed: {how}, "
                            "or drop it from report_to")


def point_into(trainer, partial: Path) -> None:
    """Where the trackers write: set on the callbacks transformers made (they read it at train begin)."""
    from transformers.integrations.integration_utils import TensorBoardCallback

    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback) and not os.environ.get("TENSORBOARD_LOGGING_DIR"):
            cb.logging_dir = str(partial / "tensorboard")
    if "wandb" in requested(trainer.args.report_to):
        os.environ.setdefault("WANDB_MODE", "offline")
