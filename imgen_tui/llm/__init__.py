"""Prompt refinement: feedback → structured changes → a new prompt that invents nothing."""
