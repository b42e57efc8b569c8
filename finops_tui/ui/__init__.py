"""The Textual explorer: the only layer that imports textual."""
