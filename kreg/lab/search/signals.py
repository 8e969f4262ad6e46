"""A search's signals: moved to ``kreg.lab.trial.signals`` (a trial's checkpoints need them, and the trial layer
is below the search's); re-exported here, where ``kreg.lab.search.signals.SearchInterrupted`` is documented."""

from kreg.lab.trial.signals import (  # noqa: F401
    SIGNALS,
    SearchInterrupted,
    SignalGuard,
    checkpoint,
    deferred,
    deferring,
    owned_signals,
    owning_signals,
    signal_name,
)
