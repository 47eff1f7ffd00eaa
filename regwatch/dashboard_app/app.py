"""The dashboard's main script: the sidebar and the page navigation.

``streamlit run regwatch/dashboard_app/app.py -- [--config FILE] [--db DIR]`` (what
``regwatch dashboard`` runs). Each page is a script in ``views/`` that calls
:mod:`regwatch.insights` through :mod:`regwatch.dashboard_app.common`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from regwatch.dashboard_app import common

HERE = Path(__file__).resolve().parent

#: (script, title, url path): the url paths are the addresses the browser test loads
PAGES = (
    ("views/overview.py", "Overview", "overview"),
    ("views/audit.py", "Audit", "audit"),
    ("views/repositories.py", "Repositories", "repositories"),
    ("views/security.py", "Security", "security"),
    ("views/ingest_health.py", "Ingest health", "ingest-health"),
)


def main() -> None:
    st.set_page_config(page_title="regwatch", layout="wide")
    nav = st.navigation(
        [st.Page(HERE / script, title=title, url_path=url, default=(i == 0)) for i, (script, title, url) in enumerate(PAGES)]
    )
    common.sidebar()
    nav.run()


main()
