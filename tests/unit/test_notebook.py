"""notebooks/capacity_forecast.ipynb runs top to bottom (nbclient), so it never rots."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "capacity_forecast.ipynb"


@pytest.mark.timeout(300)
def test_capacity_forecast_notebook_executes() -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "storage samples in the sample store:" in text
    assert "status: ok" in text
    assert "predict_linear 7d" in text
    assert "empty: not enough data" in text
