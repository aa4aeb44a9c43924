"""HTML run reports: /reports/runs/{run_id} (signed in: Bearer header or the report session
cookie) and /reports/kiosk/{token} (public, read-only)."""

from callgauge_gateway.entrypoints.reports.routes import create_reports_app

__all__ = ["create_reports_app"]
