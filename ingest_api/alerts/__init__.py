"""Release-health alert rules over HTTP (``routes.py``) and their changes of state relayed to the
projects' live streams (``watch.py``). Rules are judged by the pipeline host after each publish
(dagster_project/alerts.py); this half only stores them and tells."""
