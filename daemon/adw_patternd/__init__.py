"""adw-patternd: learns which operations AI developer workflows keep paying an LLM for."""

from .compat import (
    batch_process_workflows,
    process_and_persist_workflow,
    record_pattern_occurrence,
    sync_workflow_history,
    update_pattern_statistics,
)

__version__ = "0.1.0"
__all__ = [
    "batch_process_workflows",
    "process_and_persist_workflow",
    "record_pattern_occurrence",
    "sync_workflow_history",
    "update_pattern_statistics",
]
