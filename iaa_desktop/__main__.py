from iaa_desktop.cli import main

raise SystemExit(main())
