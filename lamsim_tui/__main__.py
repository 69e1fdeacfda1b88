from lamsim_tui.cli import main

raise SystemExit(main())
