"""The CLI sub-commands, one module each; `imgen_tui.cli` dispatches to them."""
