"""The Textual dashboard: the only part of bibnet-ops that imports Textual."""
