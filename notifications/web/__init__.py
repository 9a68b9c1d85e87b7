"""The operator web UI: its pages, forms and URLs (templates live in notifications/templates/)."""
