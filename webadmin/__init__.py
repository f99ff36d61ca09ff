"""The srjobs admin: Starlette + Jinja2 pages and a JSON API."""
