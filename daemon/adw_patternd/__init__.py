"""adw-patternd: learns which operations AI developer workflows keep paying an LLM for.

The reference design's five functions import from here, loaded on first use (module
__getattr__): `import adw_patternd`, and importing its core, load no store, engine or sqlite3.
"""

__version__ = "0.1.0"
__all__ = [
    "batch_process_workflows",
    "process_and_persist_workflow",
    "record_pattern_occurrence",
    "sync_workflow_history",
    "update_pattern_statistics",
]


def __getattr__(name: str):
    if name in __all__:
        from . import compat

        return getattr(compat, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
