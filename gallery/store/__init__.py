"""The gallery store: one DuckDB file of campaigns, runs, artworks and labels, beside its images.

- ``database``: the ``Store`` (connections that wait out locks, migrations, typed reads);
- ``schema``: the tables and what each column means;
- ``records`` and ``writes``: typed rows and the only code that writes them;
- ``queries``: what the app and the bias report read;
- ``export``: a self-contained dataset folder (tables as Parquet/CSV, images, a dataset card).
"""

from gallery.store.database import DB_NAME, IMAGES_DIR, GalleryError, Store, utc_now
from gallery.store.export import EXPORT_FORMATS, export_gallery
from gallery.store.schema import COLUMN_DOCS, MIGRATIONS, SCHEMA_VERSION, TABLES

__all__ = [
    "COLUMN_DOCS", "DB_NAME", "EXPORT_FORMATS", "IMAGES_DIR", "MIGRATIONS", "SCHEMA_VERSION",
    "TABLES", "GalleryError", "Store", "export_gallery", "utc_now",
]
