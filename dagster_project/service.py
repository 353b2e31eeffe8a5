"""How ``loom up`` starts the Dagster UI."""

from __future__ import annotations

import sys
from pathlib import Path

from dagster_project.instance import DAGSTER_ENVIRONMENT, prepare_dagster_home
from warehouse.layout import Layout
from warehouse.service import Service
from warehouse.settings import Settings


def dagster_service(settings: Settings, layout: Layout) -> Service:
    """`dagster dev` (webserver, daemon with the schedules and sensor) on the project's instance.

    Loopback only: the Dagster UI has no authentication.
    """
    repo = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-m", "dagster", "dev", "-m", "dagster_project"]
    argv += ["--working-directory", str(repo), "--host", "127.0.0.1"]
    argv += ["--port", str(settings.dagster_port)]
    return Service(
        "Dagster UI",
        argv,
        f"http://127.0.0.1:{settings.dagster_port}  (asset graph: /asset-groups)",
        env={
            "DAGSTER_HOME": str(prepare_dagster_home(layout)),
            "LOOM_DATA_DIR": str(layout.data_dir),
            **DAGSTER_ENVIRONMENT,
        },
    )
