"""Full screens: one per view (mode), plus the welcome screen for an empty cache."""
