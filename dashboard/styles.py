"""Theme tokens and named style dicts shared by the components."""

ACCENT = "teal"
SIDEBAR_WIDTH = "15em"

page_style = {"padding": "1.5em 2em", "width": "100%", "min_height": "100vh"}
card_style = {"padding": "1em", "width": "100%"}
table_style = {"width": "100%", "font_size": "0.9em"}
mono = {"font_family": "ui-monospace, SFMono-Regular, Menlo, monospace", "font_size": "0.85em"}

STATUS_COLORS = {
    "online": "green",
    "offline": "gray",
    "draining": "amber",
    "banned": "red",
    "pending": "gray",
    "queued": "gray",
    "assigned": "blue",
    "running": "blue",
    "verifying": "blue",
    "disputed": "amber",
    "verified": "green",
    "failed": "red",
    "cancelled": "gray",
    "rejected": "red",
    "submitted": "blue",
    "accepted": "green",
    "expired": "gray",
}
