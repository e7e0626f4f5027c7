"""The terminal app: the only layer that imports Textual.

Textual paints at most `TEXTUAL_FPS` frames a second (60 by default), and a
key's repaint waits for the next frame slot. At 120 a cursor move reaches the
terminal up to 8 ms sooner, while drafts stream (`imgen-tui bench ui`: key →
repaint p99 45 to 52 ms at 60, 31 to 33 ms at 120). Frames are only drawn when
something changed, so an idle app costs nothing more. Set before Textual is
first imported (it reads the variable once); an operator's own setting wins.
`frame_pacing` makes that slot one interval after the last frame, where
Textual's own timer could put it two.
"""

import os

os.environ.setdefault("TEXTUAL_FPS", "120")
