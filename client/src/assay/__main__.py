"""``python -m assay`` = the ``assay`` command."""

from assay.cli import main

raise SystemExit(main())
