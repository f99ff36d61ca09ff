"""Schedules: parse and validate the contract's cron forms; fire times and descriptions.

Pure functions only. The scheduler turns a Schedule into an APScheduler trigger
(`ScheduleTrigger`); the admin uses the same object for validation, the description and the
next fire times. Job-store rows of the first release pickled `shared.cron.ScheduleTrigger`,
`shared.cron.Schedule` and `shared.cron.CronSpec` by these names: they stay importable from
here (tests/unit/test_stored_jobs.py loads such rows).
"""

from shared.cron.evaluate import CronSpec, next_cron_fire, next_every_fire, wall_instants
from shared.cron.parse import expand_field, parse_schedule, validate_timezone
from shared.cron.schedule import Schedule
from shared.cron.syntax import MAX_EXPR_LENGTH, MAX_TZ_LENGTH
from shared.cron.trigger import ScheduleTrigger, UnknownStateVersion

__all__ = [
    "MAX_EXPR_LENGTH",
    "MAX_TZ_LENGTH",
    "CronSpec",
    "Schedule",
    "ScheduleTrigger",
    "UnknownStateVersion",
    "expand_field",
    "next_cron_fire",
    "next_every_fire",
    "parse_schedule",
    "validate_timezone",
    "wall_instants",
]
