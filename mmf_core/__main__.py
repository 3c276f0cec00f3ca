from mmf_core.cli import main

raise SystemExit(main())
