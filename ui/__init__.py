"""The Streamlit dashboard: role screens (``ui/screens``), the one map (``ui/map.py``),
labels (``ui/i18n.py``). Pages are thin: queries live in ``analysis`` and ``layers``."""
