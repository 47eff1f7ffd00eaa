"""The operator dashboard: a Streamlit app (``app.py``, pages in ``views/``).

Run it with ``regwatch dashboard`` (see regwatch/dashboard.py and docs/dashboard.md).
The pages call :mod:`regwatch.insights` only; this package is the one place besides
``dashboards/`` that imports Streamlit.
"""
