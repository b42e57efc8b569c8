"""Basics every feature shares: periods, cost metrics and currencies, money, dimensions, resource ids."""
