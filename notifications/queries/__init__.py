"""The queries layer: every read the interfaces show (lists and their pages, an event with its history, the summary,
channel states, the dead-letter groups, the dashboard's and /metrics' figures, the CSV export). Nothing here writes."""
