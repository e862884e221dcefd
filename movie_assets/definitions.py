"""The code location: assembles the assets, checks and resources. No I/O at import time."""

from __future__ import annotations

import dagster as dg

from resources import default_resources

from .assets import BUILD_ASSETS, INPUT_SPECS, generate_movie_job
from .sensors import movie_inbox

defs = dg.Definitions(
    assets=[*INPUT_SPECS.values(), *BUILD_ASSETS],
    jobs=[generate_movie_job],
    sensors=[movie_inbox],
    resources=default_resources(),
    # One step builds everything concurrently inside; a process per step would only add start-up cost.
    executor=dg.in_process_executor,
)
