"""The srjobs scheduler: one leader (by Postgres advisory lock) fires schedules."""
