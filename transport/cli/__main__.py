"""`python -m agentlog.transport.cli`: the `agentlog` command without its console script."""

from agentlog.transport.cli.main import main

raise SystemExit(main())
