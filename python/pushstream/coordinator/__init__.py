"""The coordinator: runs once per installation and moves data from local slices
to staging files to target tables (see :mod:`pushstream.coordinator.pipeline`)."""

from pushstream.coordinator.pipeline import Coordinator, CoordinatorOptions, retry_delay

__all__ = ["Coordinator", "CoordinatorOptions", "retry_delay"]
