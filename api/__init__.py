"""HTTP interfaces for other systems (Open311), served by the dashboard process."""
