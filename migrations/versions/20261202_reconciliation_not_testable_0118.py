"""analyst_reconciliation: attendances the reconciliation cannot test are "not_testable", with why

The report no longer calls an attendance at a meeting without an invitee list
``attended_no_invitee_list``, nor a person without an email at a meeting with a list
``uninvited_attended`` (there was nothing to look for on the list): both are ``not_testable``,
and a new last column, ``status_reason``, says why (``no_invitee_list`` or ``no_email``). The
view says what the report says, so it changes with it.

The view's query is revision 0114's, with exactly the changes below (each must be found once):
0114 is never edited, so what changed is read here rather than in two copies of the query.
``CREATE OR REPLACE`` keeps the grants an administrator gave the analysts' role (0115-0117
left the view as 0114 made it). Downgrading drops and creates the view and the organisations
view that reads it as 0114 did: run ``meetaudit db views grant`` again afterwards.

Revision ID: 0118
Revises: 0117
Create Date: 2026-12-03 09:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0118"
down_revision: str | Sequence[str] | None = "0117"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "analyst_reconciliation"
_STATUS = (
    """                    WHEN NOT m.has_list THEN 'attended_no_invitee_list'
                    ELSE 'uninvited_attended' END AS status,""",
    """                    WHEN NOT m.has_list THEN 'not_testable'
                    WHEN starts_with(pe.key, 'participant:') THEN 'not_testable'
                    ELSE 'uninvited_attended' END AS status,
               CASE WHEN pe.admitted AND inv.key IS NULL AND NOT pe.host THEN
                   CASE WHEN NOT m.has_list THEN 'no_invitee_list'
                        WHEN starts_with(pe.key, 'participant:') THEN 'no_email' END
               END AS status_reason,""",
)
_ABSENT = (
    """               true AS invited, false AS admitted, 'invited_absent' AS status,""",
    """               true AS invited, false AS admitted, 'invited_absent' AS status,
               NULL::text AS status_reason,""",
)
_SELECTED = (
    """           ], NULL) AS flags
    FROM (SELECT * FROM people UNION ALL SELECT * FROM absent) r""",
    """           ], NULL) AS flags,
           r.status_reason
    FROM (SELECT * FROM people UNION ALL SELECT * FROM absent) r""",
)
_COMMENT = (
    "The monthly report's reconciliation rows: one row per person and harvested meeting, "
    "invitees against attendees (invited and attended, host, not invited, not testable, lobby "
    "only, invited and absent). Phone numbers and callers' names that are their numbers are "
    "masked."
)
_COLUMN_COMMENTS = {
    "status": "host_attended, invited_attended, uninvited_attended, not_testable (admitted, but "
    "there is no invitee list to test against, or no email to look for on it: status_reason), "
    "lobby_only or invited_absent (the report's meanings).",
    "status_reason": "Why a not_testable row could not be tested: no_invitee_list (the meeting "
    "has none) or no_email (the person has no email to look for on the list); empty otherwise.",
}


def _revision_0114() -> ModuleType:
    path = Path(__file__).with_name("20261202_analyst_views_0114.py")
    spec = importlib.util.spec_from_file_location("meetaudit_migration_0114", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _changed(query: str) -> str:
    for before, after in (_STATUS, _ABSENT, _SELECTED):
        if query.count(before) != 1:
            raise RuntimeError(f"revision 0114's {_NAME} query is not the one 0118 changes")
        query = query.replace(before, after)
    return query


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def upgrade() -> None:
    _, query, columns = _revision_0114().VIEWS[_NAME]
    names = [*columns, "status_reason"]
    conn = op.get_bind()
    conn.exec_driver_sql(
        f"CREATE OR REPLACE VIEW {_NAME} ({', '.join(names)}) AS {_changed(query)}"
    )
    conn.exec_driver_sql(f"COMMENT ON VIEW {_NAME} IS {_literal(_COMMENT)}")
    for column, comment in _COLUMN_COMMENTS.items():
        conn.exec_driver_sql(f"COMMENT ON COLUMN {_NAME}.{column} IS {_literal(comment)}")


def downgrade() -> None:
    views = _revision_0114().VIEWS
    conn = op.get_bind()
    dependants = ["analyst_organisations"]  # reads analyst_reconciliation
    for name in dependants:
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
    conn.exec_driver_sql(f"DROP VIEW IF EXISTS {_NAME}")
    for name in (_NAME, *dependants):
        comment, query, columns = views[name]
        conn.exec_driver_sql(f"CREATE VIEW {name} ({', '.join(columns)}) AS {query}")
        conn.exec_driver_sql(f"COMMENT ON VIEW {name} IS {_literal(comment)}")
        for column, text_ in columns.items():
            conn.exec_driver_sql(f"COMMENT ON COLUMN {name}.{column} IS {_literal(text_)}")
