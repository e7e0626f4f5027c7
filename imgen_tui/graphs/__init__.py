"""ComfyUI API-format graphs: templates, parameters, injection. Pure data, no I/O but loading."""

from imgen_tui.graphs.graph import Graph, GraphError
from imgen_tui.graphs.inject import LoraSpec, inject_loras, set_source_image
from imgen_tui.graphs.params import Parameter, apply_parameters, extract_parameters, with_values
from imgen_tui.graphs.templates import WorkflowLibrary, WorkflowTemplate, load_library

__all__ = [
    "Graph",
    "GraphError",
    "LoraSpec",
    "Parameter",
    "WorkflowLibrary",
    "WorkflowTemplate",
    "apply_parameters",
    "extract_parameters",
    "inject_loras",
    "load_library",
    "set_source_image",
    "with_values",
]
