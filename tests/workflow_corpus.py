"""The corpus the parameter figure is measured on: real-shaped workflows, all in tests/fixtures.

- every graph a recorded run submitted to a real ComfyUI 0.3.64 (v1 and v2
  recordings, incl. history copies: `recorded_graphs.json`),
- the shipped templates, rendered with the demo farm's models,
- the hand-written UI-format files in tests/fixtures/workflows, converted,
- API graphs written after ComfyUI's template shapes for the modern paths
  (Flux schnell/dev on SamplerCustom(Advanced), SD3.5, SDXL with a CFGGuider
  and primitives, Wan 2.1 text to video): `written_graphs.json`.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from imgen_tui.graphs.templates import load_library
from imgen_tui.graphs.typed_params import found_roles, typed_parameters
from imgen_tui.graphs.ui_format import ui_to_api
from imgen_tui.locations import bundled_dir
from imgen_tui.sim.spec import load_demo_farm
from tests.ui_workflows import FIXTURES, full_object_info

CORE_ROLES = frozenset({"prompt", "seed", "steps", "width", "height"})


@cache
def corpus() -> dict[str, dict[str, Any]]:
    graphs: dict[str, dict[str, Any]] = json.loads(
        (FIXTURES / "recorded_graphs.json").read_text(encoding="utf-8")
    )
    graphs.update(json.loads((FIXTURES / "written_graphs.json").read_text(encoding="utf-8")))
    models = load_demo_farm().models
    for template in load_library([bundled_dir("workflows")]):
        values = {"prompt": "a red fox", "image": "fox.png", **template.defaults}
        graphs[f"shipped/{template.name}"] = template.render(values, models)
    for path in sorted(FIXTURES.glob("*_ui.json")):
        workflow = json.loads(path.read_text(encoding="utf-8"))
        graphs[f"ui/{path.stem}"] = ui_to_api(workflow, full_object_info()).graph
    return graphs


def all_core_found(graph: dict[str, Any]) -> bool:
    return found_roles(typed_parameters(graph, full_object_info())) >= CORE_ROLES


if __name__ == "__main__":
    graphs = corpus()
    found = [name for name, graph in graphs.items() if all_core_found(graph)]
    print(f"{len(found)} of {len(graphs)} workflows: prompt, seed, steps and size all found")
    for name in sorted(set(graphs) - set(found)):
        roles = found_roles(typed_parameters(graphs[name], full_object_info()))
        print(f"  not all: {name} (missing {sorted(CORE_ROLES - roles)})")
