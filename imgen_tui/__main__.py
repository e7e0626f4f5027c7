from imgen_tui.cli import main

raise SystemExit(main())
