"""The dashboard's entry in the repository: ``streamlit run dashboards/app.py -- --db DIR``.

The app itself is packaged (regwatch/dashboard_app/, so ``pip install .`` ships it and
``regwatch dashboard`` runs it); this file only runs it, so both ways show the same pages.
"""

import runpy

from regwatch.dashboard import APP

runpy.run_path(str(APP), run_name="__main__")
