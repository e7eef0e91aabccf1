"""`python -m course.data prepare|download`: see `course.data.cli`."""
import sys

from course.data.cli import main

sys.exit(main())
