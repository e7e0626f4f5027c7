"""A ComfyUI-protocol-compatible simulated node and farm, for demo mode and tests."""
