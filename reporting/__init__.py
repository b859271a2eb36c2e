"""meetaudit: compliance and audit reporting for Webex meetings.

Flow: Webex API (``reporting.webex``) → harvest (``reporting.harvest``) → PostgreSQL
(``reporting.db``) → report / investigate (``reporting.report``, ``reporting.investigate``)
→ PDF, CSV, JSON.
"""

__version__ = "0.4.0"
