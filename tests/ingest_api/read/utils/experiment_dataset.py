"""An experiment landed on top of the read-API dataset (``dataset.py``), every number by hand.

Org A runs the flag ``new-checkout`` (variants ``control`` and ``test``) on 2026-11-22; times are
UTC, ``x`` is a ``$feature_flag_called`` exposure, ``P`` the goal ``Purchase Completed`` sent as a
display name (stored as ``purchase_completed``, the name as sent in ``event_display_name``) and
``p`` the same goal sent natively as ``purchase_completed``: each form must find both.

======  ============  ===========================================================================
person  assigned      events (2026-11-22 unless said)
======  ============  ===========================================================================
c1      control       x 10:00 · viewed_pricing 10:10 · started_checkout 10:20 · p 10:30
c2      control       P 09:00 (before its exposure) · x 10:01 · viewed_pricing 10:11
c3      control       x 10:02 · viewed_pricing 10:12 · started_checkout 10:22 · P 11-30 10:02
c4      control       x 10:03
t1      test          x 10:04 · viewed_pricing 10:14 · started_checkout 10:24 · P 10:34
t2      test          x 10:05 · viewed_pricing 10:15 · started_checkout 10:25
t3      test          x 10:06 · p 11:06
t4      test          x test 10:07, then x control 10:17 (first variant kept) · P 10:37
======  ============  ===========================================================================

Experiment, goal ``purchase_completed`` within 7 days of the exposure: control 4 persons, 1
conversion (c1; c2 bought before, c3 eight days after); test 4 persons, 3 conversions (t1, t3,
t4). Within 9 days c3 converts too: control 2 of 4.

Funnel ``viewed_pricing → started_checkout → purchase_completed`` within 7 days: 5 persons at
step 1 (c1, c2, c3, t1, t2), 4 at step 2 (not c2), 2 at step 3 (c1, t1); by variant control
3 → 2 → 1 and test 2 → 2 → 1.

Org B has one exposure of its own to ``new-checkout`` (``test``), never counted for org A.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bench.generate import event_record, write_records
from tests.ingest_api.read.utils.dataset import at
from warehouse.layout import Layout

EXPERIMENT_DAY = datetime(2026, 11, 22)
FLAG = "new-checkout"
GOAL_DISPLAY_NAME = "Purchase Completed"
GOAL_EVENT = "purchase_completed"
FUNNEL_STEPS = ("viewed_pricing", "started_checkout", GOAL_EVENT)
EXPOSURE = "$feature_flag_called"

# (distinct_id, event, timestamp, variant of an exposure)
_D = EXPERIMENT_DAY
EXPERIMENT_EVENTS: list[tuple[str, str, datetime, str | None]] = [
    ("c1", EXPOSURE, at(_D, 10, 0), "control"),
    ("c1", "viewed_pricing", at(_D, 10, 10), None),
    ("c1", "started_checkout", at(_D, 10, 20), None),
    ("c1", GOAL_EVENT, at(_D, 10, 30), None),
    ("c2", GOAL_DISPLAY_NAME, at(_D, 9, 0), None),
    ("c2", EXPOSURE, at(_D, 10, 1), "control"),
    ("c2", "viewed_pricing", at(_D, 10, 11), None),
    ("c3", EXPOSURE, at(_D, 10, 2), "control"),
    ("c3", "viewed_pricing", at(_D, 10, 12), None),
    ("c3", "started_checkout", at(_D, 10, 22), None),
    ("c3", GOAL_DISPLAY_NAME, at(_D + timedelta(days=8), 10, 2), None),
    ("c4", EXPOSURE, at(_D, 10, 3), "control"),
    ("t1", EXPOSURE, at(_D, 10, 4), "test"),
    ("t1", "viewed_pricing", at(_D, 10, 14), None),
    ("t1", "started_checkout", at(_D, 10, 24), None),
    ("t1", GOAL_DISPLAY_NAME, at(_D, 10, 34), None),
    ("t2", EXPOSURE, at(_D, 10, 5), "test"),
    ("t2", "viewed_pricing", at(_D, 10, 15), None),
    ("t2", "started_checkout", at(_D, 10, 25), None),
    ("t3", EXPOSURE, at(_D, 10, 6), "test"),
    ("t3", GOAL_EVENT, at(_D, 11, 6), None),
    ("t4", EXPOSURE, at(_D, 10, 7), "test"),
    ("t4", EXPOSURE, at(_D, 10, 17), "control"),
    ("t4", GOAL_DISPLAY_NAME, at(_D, 10, 37), None),
]
ORG_B_EXPOSURE = ("b-exposed", EXPOSURE, at(_D, 10, 0), "test")


def _record(org_id: str, project_id: int, n: int, row: tuple) -> dict:
    distinct_id, name, timestamp, variant = row
    properties = {"$feature_flag": FLAG, "$feature_flag_response": variant} if variant else {}
    record = event_record(
        org_id=org_id,
        project_id=project_id,
        event=GOAL_EVENT if name == GOAL_DISPLAY_NAME else name,
        distinct_id=distinct_id,
        timestamp=timestamp,
        received_at=timestamp + timedelta(seconds=1),
        properties=properties,
        uuid=f"{org_id}-x{n:02d}",
        source="track",
    )
    # What /track stores for a display name: the normalized name, and the name as sent.
    if name == GOAL_DISPLAY_NAME:
        record["event_display_name"] = GOAL_DISPLAY_NAME
    return record


def land_experiment(layout: Layout, org_a: str, project_a: int, org_b: str, project_b: int) -> None:
    records = [_record(org_a, project_a, n, row) for n, row in enumerate(EXPERIMENT_EVENTS)]
    records.append(_record(org_b, project_b, 0, ORG_B_EXPOSURE))
    write_records(layout, "events", records, tag="experiment")
