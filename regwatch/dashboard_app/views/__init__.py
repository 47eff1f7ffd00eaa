"""The dashboard's pages: Streamlit scripts that ``st.navigation`` runs (see ../app.py); not named pages/, which Streamlit would list on its own before st.navigation takes over."""
