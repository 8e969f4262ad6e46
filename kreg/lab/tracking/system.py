"""What a trial cost the machine: MLflow's system metrics on the trial's run, while it trains.

MLflow's ``SystemMetricsMonitor`` samples on a thread of this process for a
run id (no ``mlflow.start_run`` needed) and logs under ``system/``, which the
run page shows in its "System metrics" tab. kreg keeps its CPU and memory
monitor (system-wide ``cpu_utilization_percentage``,
``system_memory_usage_megabytes``/``_percentage``) and a GPU monitor where
MLflow finds one, drops the disk and network monitors, and adds this
process's own figures (``process_cpu_utilization_percentage``, of all cores,
and ``process_memory_rss_megabytes``): with parallel workers on one machine
the system-wide figures mix every worker's trials, the process's do not.

Each sample is logged at its own step (0, 1, ...); ``stop`` logs what was
sampled since the last one, so a trial shorter than the interval still
has a point.
"""

from __future__ import annotations

import logging

DEFAULT_INTERVAL_S = 2.0


def _process_monitor():
    import psutil
    from mlflow.system_metrics.metrics.base_metrics_monitor import BaseMetricsMonitor

    class ProcessMonitor(BaseMetricsMonitor):
        """This process's CPU (percent of all cores) and resident memory."""

        def __init__(self):
            super().__init__()
            self._process = psutil.Process()
            self._cores = psutil.cpu_count() or 1
            self._process.cpu_percent()  # the first call starts the interval

        def collect_metrics(self):
            self._metrics["process_cpu_utilization_percentage"].append(self._process.cpu_percent() / self._cores)
            self._metrics["process_memory_rss_megabytes"].append(self._process.memory_info().rss / 1e6)

        def aggregate_metrics(self):
            return {k: round(sum(v) / len(v), 1) for k, v in self._metrics.items() if v}

    return ProcessMonitor()


class TrialMonitor:
    """Samples CPU and memory every ``interval_s`` seconds into run ``run_id``'s ``system/*`` metrics."""

    def __init__(self, run_id: str, tracking_uri: str, interval_s: float = DEFAULT_INTERVAL_S):
        from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # a line per trial otherwise
        self._monitor = SystemMetricsMonitor(run_id, sampling_interval=interval_s, tracking_uri=tracking_uri)
        gpus = [m for m in self._monitor.monitors if "GPU" in type(m).__name__ or "ROCM" in type(m).__name__]
        self._monitor.monitors = [CPUMonitor(), _process_monitor(), *gpus]
        self._monitor.start()

    def stop(self) -> None:
        """Stops sampling; logs the samples not logged yet and anything MLflow still holds. Idempotent."""
        monitor, self._monitor = self._monitor, None
        if monitor is None or monitor._process is None:
            return
        monitor._shutdown_event.set()
        monitor._process.join()
        monitor._process = None
        if any(m.metrics for m in monitor.monitors):
            monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()


def start(run_id: str, tracking_uri: str, interval_s: float | None) -> TrialMonitor | None:
    """A running monitor, or None when switched off (``interval_s`` None) or psutil is missing."""
    if interval_s is None:
        return None
    try:
        import psutil  # noqa: F401  (MLflow's system metrics need it)
    except ImportError:
        return None
    return TrialMonitor(run_id, tracking_uri, interval_s)
