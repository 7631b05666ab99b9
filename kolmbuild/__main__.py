from kolmbuild.cli.entry import main

raise SystemExit(main())
