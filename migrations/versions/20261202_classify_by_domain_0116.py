"""classification by (orgId, email domain): the same rule, cheap enough for a month of rows

``meetaudit_classify`` and ``meetaudit_org_key`` (migration 0114) are the report's rule in SQL,
shared by the analysts' views and ``meetaudit investigate orgs``. Each call ran as a function
of its own (a sub-select and two array scans), about 0.1 ms, and ``orgs`` called them several
times per participant row: 4 s for a month of 200,000-row data. The rule depends on the email
only through its domain, so it is now written once over (orgId, domain) —
``meetaudit_classify_domain`` and ``meetaudit_org_key_domain`` — which ``orgs`` calls once per
distinct pair (a few hundred a month); ``meetaudit_classify``/``meetaudit_org_key`` keep their
signatures and answers and call them. ``meetaudit_email_domain`` becomes one expression, which
PostgreSQL inlines into the query instead of calling per row.

Revision ID: 0116
Revises: 0115
Create Date: 2026-12-02 17:15:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0116"
down_revision: str | Sequence[str] | None = "0115"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EMAIL = "meetaudit_strip(email)"
FUNCTIONS = {
    # One expression, without regular expressions: the text after the last "@" when there is
    # text before it (as 0114's, which PostgreSQL called per row instead of inlining it).
    "meetaudit_email_domain(text)": f"""
CREATE OR REPLACE FUNCTION meetaudit_email_domain(email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN strpos({_EMAIL}, '@') > 0
             AND length({_EMAIL}) > length(reverse(split_part(reverse({_EMAIL}), '@', 1))) + 1
            THEN nullif(lower(btrim(meetaudit_strip(
                     reverse(split_part(reverse({_EMAIL}), '@', 1))), '.')), '')
       END $$""",
    "meetaudit_classify_domain(text,text,text[],text[])": """
CREATE OR REPLACE FUNCTION meetaudit_classify_domain(org_id text, domain text, own_ids text[],
                                                     own_domains text[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN oid IN (SELECT lower(meetaudit_strip(o)) FROM unnest(own_ids) o
                 WHERE meetaudit_strip(o) <> '')
      OR EXISTS (SELECT 1 FROM unnest(own_domains) d0
                 CROSS JOIN LATERAL (SELECT ltrim(lower(meetaudit_strip(d0)), '@') AS d) n
                 WHERE meetaudit_strip(d0) <> ''
                   AND (domain = n.d OR right(domain, length(n.d) + 1) = '.' || n.d))
    THEN 'internal'
    WHEN oid IS NOT NULL OR domain IS NOT NULL THEN 'external'
    ELSE 'unidentified'
END
FROM (SELECT meetaudit_org_id(org_id) AS oid) s $$""",
    "meetaudit_classify(text,text,text[],text[])": """
CREATE OR REPLACE FUNCTION meetaudit_classify(org_id text, email text, own_ids text[],
                                              own_domains text[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT meetaudit_classify_domain(org_id, meetaudit_email_domain(email), own_ids, own_domains) $$""",
    "meetaudit_org_key_domain(text,text,text[],text[],text)": """
CREATE OR REPLACE FUNCTION meetaudit_org_key_domain(org_id text, domain text, own_ids text[],
                                                    own_domains text[], org_name text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN meetaudit_classify_domain(org_id, domain, own_ids, own_domains) = 'internal'
            THEN org_name
            ELSE coalesce(meetaudit_org_id(org_id), domain) END $$""",
    "meetaudit_org_key(text,text,text[],text[],text)": """
CREATE OR REPLACE FUNCTION meetaudit_org_key(org_id text, email text, own_ids text[],
                                             own_domains text[], org_name text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT meetaudit_org_key_domain(org_id, meetaudit_email_domain(email), own_ids, own_domains,
                                org_name) $$""",
}
_NEW = ("meetaudit_classify_domain(text,text,text[],text[])",
        "meetaudit_org_key_domain(text,text,text[],text[],text)")  # fmt: skip


def _functions_of_0114() -> dict[str, str]:
    path = Path(__file__).with_name("20261202_analyst_views_0114.py")
    spec = importlib.util.spec_from_file_location("meetaudit_migration_0114", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.FUNCTIONS)


def upgrade() -> None:
    conn = op.get_bind()
    for sql in FUNCTIONS.values():
        conn.exec_driver_sql(sql)


def downgrade() -> None:
    conn = op.get_bind()
    old = _functions_of_0114()
    for signature in ("meetaudit_email_domain(text)", "meetaudit_classify(text,text,text[],text[])",
                      "meetaudit_org_key(text,text,text[],text[],text)"):  # fmt: skip
        conn.exec_driver_sql(
            old[signature].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
        )
    for signature in reversed(_NEW):
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature}")
