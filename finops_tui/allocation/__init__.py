"""Allocation: effective tags (provider tags, key aliases, rules, manual edits) and the tag-edit journal."""
