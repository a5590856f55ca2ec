from quadlens.cli import main

raise SystemExit(main())
