"""Each stage's function sizes, priced by the estimate and the crashed-try bounds, are the sizes
chalice deploys: its own resolution of .chalice/config.json, whichever level sets them."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.config import PROJECT_ROOT
from chalicelib.pricing import FunctionSize
from deploy.function_sizes import sizes_from_config

FUNCTIONS = {
    "worker": {"lambda_memory_size": 1769, "lambda_timeout": 900},
    "dispatcher": {"lambda_memory_size": 1024},
}


def test_a_stage_wide_size_comes_before_the_functions_global_one() -> None:
    """Chalice's order: the stage's function entry, the stage, the function's global entry,
    the top level, chalice's defaults (128 MB, 60 s). A merge of the two function entries
    alone priced prod's 3,538 MB workers at 1,769 MB."""
    config: dict[str, Any] = {
        "lambda_timeout": 120,
        "lambda_functions": FUNCTIONS,
        "stages": {
            "prod": {
                "lambda_memory_size": 3538,
                "lambda_functions": {"dispatcher": {"lambda_memory_size": 512}},
            },
            "dev": {},
        },
    }
    assert sizes_from_config(config, "prod") == {
        "dispatcher": FunctionSize(512, 120),
        "worker": FunctionSize(3538, 900),
    }
    assert sizes_from_config(config, "dev") == {
        "dispatcher": FunctionSize(1024, 120),
        "worker": FunctionSize(1769, 900),
    }
    assert sizes_from_config({"lambda_functions": {"worker": {}}}, "dev") == {
        "worker": FunctionSize(128, 60)
    }


def test_every_stage_of_the_projects_config_resolves_every_function() -> None:
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    for stage in config["stages"]:
        sizes = sizes_from_config(config, stage)
        assert {"api_handler", "dispatcher", "worker", "compactor"} <= sizes.keys()
