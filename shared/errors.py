"""The srjobs error hierarchy; driver errors are wrapped once, cause chained."""


class SrjobsError(Exception):
    """Base class of every error srjobs raises on purpose."""


class ConfigError(SrjobsError):
    """A setting has a bad value; the message names the variable."""


class NotMigrated(SrjobsError):
    """The database is missing or behind the migrations."""


class InvalidSchedule(SrjobsError):
    """A cron expression or time zone that srjobs cannot use."""


class InvalidInput(SrjobsError):
    """A request value of the wrong type, size or range."""


class UnknownJob(SrjobsError):
    """No schedule row has that name."""


class UnknownRun(SrjobsError):
    """No run has that id."""


class RunConflict(SrjobsError):
    """A run of the job is already pending, enqueued or running."""

    def __init__(self, run: object) -> None:
        super().__init__("a run of this job is already pending, enqueued or running")
        self.run = run


class LeadershipLost(SrjobsError):
    """The leader's lock session is gone: stop firing at once."""


class PermanentJobError(SrjobsError):
    """A job failure that retrying cannot fix; the run is discarded."""


class Conflict(SrjobsError):
    """A request the current state forbids: a name taken, a declared job deleted, a finished
    run cancelled (409)."""
