"""Calibration's outputs are never among its inputs.

It writes model.int8.onnx, calibration.json and calibration.png beside the model. A `--data`
folder that holds them (the build folder itself, or one above it) would read a previous
run's chart as a calibration image, and a `--data` file that is one of them would be
replaced while read. Both are refused before any work.
"""

from __future__ import annotations

from pathlib import Path

from runtime.core.errors import UserError


def refuse_data_holding_outputs(data: str, outputs: list[Path]) -> None:
    """UserError when the `--data` path is one of `outputs` or a folder that contains one."""
    path = Path(data)
    if not path.exists():
        return  # 'digits', or a path open_source reports as missing
    where = path.resolve()
    for out in outputs:
        target = out.resolve()
        if target == where or (where.is_dir() and target.is_relative_to(where)):
            raise UserError(
                f"--data {data} holds {out}, which this calibration writes; "
                "give a folder or file outside the model's build folder"
            )
