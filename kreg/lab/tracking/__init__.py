"""MLflow tracking: the store, the search/trial runs, plots."""

from kreg.lab.tracking.store import default_tracking_uri
from kreg.lab.tracking.store import project_root
from kreg.lab.tracking.store import resolve_tracking_uri

__all__ = [
    "default_tracking_uri",
    "project_root",
    "resolve_tracking_uri",
]
