"""The embedded scheduler: jobs, routing policy, variations (dispatch comes next)."""
