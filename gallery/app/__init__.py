"""The read-only Streamlit gallery: ``artbias gallery`` runs ``app.py`` from this package.

Only the page modules import Streamlit; ``charts`` are plain functions over DataFrames and
the store's reads live in ``gallery.store.queries``, so both are tested without a browser.
"""
