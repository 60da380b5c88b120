"""The read-only Streamlit gallery: ``artbias gallery`` runs ``app.py`` from this package.

Only the page modules import Streamlit; ``queries`` and ``charts`` are plain functions over
the store and DataFrames, so they can be tested and reused without a browser.
"""
