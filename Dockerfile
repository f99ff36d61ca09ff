# One image for every srjobs service; the command picks the service:
#   srjobs migrate | srjobs scheduler | srjobs worker | srjobs webadmin --host 0.0.0.0
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY srjobs ./srjobs
COPY shared ./shared
COPY scheduler ./scheduler
COPY worker ./worker
COPY webadmin ./webadmin
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin srjobs
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER srjobs
EXPOSE 8000
ENTRYPOINT []
CMD ["srjobs", "webadmin", "--host", "0.0.0.0", "--port", "8000"]
