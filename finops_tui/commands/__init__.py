"""The headless commands behind `finops-tui VERB`: each loads config and rules, calls the data layer, prints."""
